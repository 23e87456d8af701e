"""FusionRec: reduces to BPR-MF without modalities; with content it ranks cold items far above random; user
features serve users it never saw, and without them the model is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features, build_user_features
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import LSTMEncoder, TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.fusion import AttentionFusion, EarlyFusion, GraphFusion, LateFusion
from mmbench.models.bpr import BPR
from mmbench.models.fusion_rec import FusionRec
from mmbench.models.pop import Pop
from mmbench.splits import load_or_create
from mmbench.splits.splitters import ColdUserSplit
from mmbench.training import NeuralTrainer
from tests.test_pipeline import cfg_for


@pytest.fixture(scope="module")
def syn():
    return Synthetic(n_users=60, n_items=80, interactions_per_user=8, missing_image=0.3).read()


def trained(model, ds, epochs=3):
    NeuralTrainer(max_epochs=epochs, batch_size=128, enable_progress_bar=False).fit(
        model, ds.interactions, None, Evaluator(progress=False)
    )
    return model


def test_without_modalities_it_is_bpr_mf(syn):
    a = trained(BPR(embedding_dim=8, reg=1e-3), syn)
    b = FusionRec(embedding_dim=8, reg=1e-3, fusion=EarlyFusion())
    b.set_features({})
    trained(b, syn)
    users = torch.arange(10)
    assert torch.allclose(a.score(users), b.score(users), atol=1e-6)


# Parameters and trained scores of FusionRec before user features existed (commit 549d73a), on `syn` with image
# (multihot) and text (tfidf) features, 2 epochs: scores[:3, :4] and the sum of scores[:3].
BEFORE_USER_FEATURES = {
    "early": (
        ["fusion.missing", "fusion.mlp.0.weight", "fusion.mlp.0.bias", "fusion.mlp.3.weight", "fusion.mlp.3.bias"],
        [
            [-0.008276, 0.004817, 0.007806, -0.002883],
            [0.023111, 0.129582, 0.05638, 0.013475],
            [0.125421, 0.063267, 0.168083, 0.093925],
        ],
        11.380367,
    ),
    "late": (
        ["fusion.logits"],
        [
            [-0.056887, -0.039389, 0.082109, 0.000413],
            [-0.03993, -0.176694, -0.052153, -0.175323],
            [-0.082576, -0.140215, 0.005314, 0.02116],
        ],
        6.717479,
    ),
}
TOWER = ["user_emb.weight", "item_emb.weight"] + [
    f"proj.{m}.{k}.{p}" for m in ("image", "text") for k in (0, 1) for p in ("weight", "bias")
]


@pytest.mark.parametrize("name, fusion", [("early", EarlyFusion(hidden_dim=16)), ("late", LateFusion())])
def test_without_user_features_it_is_unchanged(syn, tmp_path, name, fusion):
    feats, _, _ = build_features({"image": MultiHotEncoder(), "text": TfidfEncoder()}, syn, tmp_path)
    m = FusionRec(embedding_dim=8, fusion=fusion)
    m.set_features(feats)
    m.set_user_features({})
    trained(m, syn, epochs=2)
    fusion_params, scores, total = BEFORE_USER_FEATURES[name]
    assert [n for n, _ in m.named_parameters()] == fusion_params + TOWER
    s = m.score(torch.arange(3)).detach()
    np.testing.assert_allclose(s[:, :4].numpy(), scores, atol=2e-6)
    assert float(s.sum()) == pytest.approx(total, abs=1e-4)


def profile_model(ds, cache, user_id_embedding=True):
    m = FusionRec(embedding_dim=4, fusion=EarlyFusion(hidden_dim=8), user_id_embedding=user_id_embedding)
    m.set_features({})
    m.set_user_features(build_user_features({"profile": MultiHotEncoder()}, ds, cache)[0])
    m.build(ds.interactions)
    return m


def test_user_vector_is_id_plus_projected_features_and_masked_users_keep_the_id_part(tmp_path):
    ds = Synthetic(n_users=40, n_items=30, interactions_per_user=5, n_factors=6, missing_profile=0.3).read()
    has = ds.user_content["profile"].mask
    assert 0 < has.sum() < 40
    users = torch.arange(40)
    x = torch.as_tensor(ds.user_content["profile"].values)
    with torch.no_grad():
        m = profile_model(ds, tmp_path)
        proj = m.user_proj(x)
        expected = m.user_emb(users) + proj * torch.as_tensor(has)[:, None]
        assert torch.allclose(m.user_vectors(users), expected)
        assert torch.equal(m.user_vectors(users)[~has], m.user_emb(users)[~has])
        assert sum(p.numel() for p in m.parameters()) == 40 * 4 + 30 * 4 + 6 * 4 + 4
        m = profile_model(ds, tmp_path, user_id_embedding=False)
        assert not hasattr(m, "user_emb") and sum(p.numel() for p in m.parameters()) == 30 * 4 + 6 * 4 + 4
        assert torch.allclose(m.user_vectors(users)[has], m.user_proj(x[has]))
        assert torch.all(m.user_vectors(users)[~has] == 0)


def test_no_id_embedding_needs_user_features(syn):
    m = FusionRec(user_id_embedding=False)
    with pytest.raises(ValueError, match="user_id_embedding=false needs user features.*user_encoders"):
        m.set_user_features({})
    with pytest.raises(ValueError, match="user_id_embedding=false needs user features"):
        m.build(syn.interactions)


def test_user_features_serve_users_never_seen_in_training(tmp_path):
    """Cold-user protocol on synthetic data whose user profile is the planted user factors plus noise: with the
    profile and no id embedding, FusionRec ranks held-out users' items far better than the same model without
    user features (whose untrained id vectors rank at random) and better than popularity."""
    ds = Synthetic(n_users=300, n_items=200, interactions_per_user=12).read()
    split = load_or_create(ds, ColdUserSplit(0.1, 0.2, seed=0), tmp_path)
    profile = build_user_features({"profile": MultiHotEncoder()}, ds, tmp_path)[0]
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)

    def test_ndcg(model, user_features):
        model.set_features({})
        model.set_user_features(user_features)
        NeuralTrainer(max_epochs=20, batch_size=256, patience=20, enable_progress_bar=False).fit(
            model, split.train, split.val, ev
        )
        return ev.evaluate(model, split.test, [split.train, split.val]).means["ndcg@10"]

    with_features = test_ndcg(FusionRec(embedding_dim=16, user_id_embedding=False), profile)
    without = test_ndcg(FusionRec(embedding_dim=16), {})
    pop = ev.evaluate(Pop().fit(split.train), split.test, [split.train, split.val]).means["ndcg@10"]
    print(f"cold-user ndcg@10: user features {with_features:.3f}, none {without:.3f}, pop {pop:.3f}")
    assert with_features > 2 * without and with_features - without > 0.1
    assert with_features > pop


@pytest.mark.parametrize("fusion", [EarlyFusion(hidden_dim=16), AttentionFusion(), GraphFusion(k=5)])
def test_trains_with_missing_modalities_and_scores_subsets(syn, tmp_path, fusion):
    feats, _, _ = build_features({"image": MultiHotEncoder(), "text": TfidfEncoder()}, syn, tmp_path)
    m = FusionRec(embedding_dim=8, fusion=fusion)
    m.set_features(feats)
    trained(m, syn, epochs=1)
    full = m.score(torch.tensor([0, 1]))
    assert full.shape == (2, syn.n_items) and torch.isfinite(full).all()
    items = torch.tensor([5, 2, 7])
    assert torch.allclose(m.score(torch.tensor([0, 1]), items), full[:, items], atol=1e-5)


def test_trainable_encoder_is_fine_tuned(syn, tmp_path):
    feats, _, _ = build_features(
        {"text": LSTMEncoder(vocab_size=60, embed_dim=8, hidden_dim=8, max_len=8)}, syn, tmp_path
    )
    m = FusionRec(embedding_dim=8, fusion=EarlyFusion(hidden_dim=8))
    m.set_features(feats)
    m.build(syn.interactions)
    before = m.encoders["text"].embedding.weight.detach().clone()
    trained(m, syn, epochs=1)
    assert not torch.allclose(before, m.encoders["text"].embedding.weight)


def test_missing_modality_fails_before_training(syn):
    m = FusionRec(modalities=["image", "audio"], fusion=EarlyFusion())
    with pytest.raises(ValueError, match=r"modalities \['image', 'audio'\] have no encoder"):
        m.set_features({})


@pytest.mark.slow
def test_content_beats_random_on_cold_items_end_to_end(tmp_path):
    common = [
        "split=cold_item",
        "eval.candidates=target",
        "trainer.max_epochs=20",
        "callbacks.early_stopping.patience=20",
    ]
    rand = pipeline.run(cfg_for(tmp_path, "model=random", *common))
    res = pipeline.run(
        cfg_for(
            tmp_path,
            "model=fusion_rec",
            "fusion@model.fusion=attention",
            "+encoder@encoders.text=tfidf",
            "+encoder@encoders.image=multihot",
            *common,
        )
    )
    assert res.split.fingerprint == rand.split.fingerprint
    r, c = rand.metrics["test/ndcg@10"], res.metrics["test/ndcg@10"]
    print(f"cold ndcg@10 content {c:.3f} random {r:.3f}")
    assert c > 2 * r and c - r > 0.1, (c, r)
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id)
    assert run.data.tags["encoder.text"] == "TfidfEncoder"
    att = [run.data.metrics[f"fusion/attention_{s}"] for s in ("id", "text", "image")]
    assert sum(att) == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite(run.data.metrics["time/encode_s"])
