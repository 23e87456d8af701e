"""FusionRec: reduces to BPR-MF without modalities; with content it ranks cold items far above random; user
features serve users it never saw, and without them the model is unchanged."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features, build_user_features
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import LSTMEncoder, TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.fusion import AttentionFusion, EarlyFusion, GraphFusion, LateFusion
from mmbench.models.multimodal.fusion_rec import FusionRec
from mmbench.models.neural.bpr import BPR
from mmbench.models.topn.pop import Pop
from mmbench.splits import load_or_create
from mmbench.splits.splitters import ColdUserSplit
from mmbench.training import NeuralTrainer
from tests.helpers.config import cfg_for


@pytest.fixture(scope="module")
def syn():
    return Synthetic(n_users=60, n_items=80, interactions_per_user=8, missing_image=0.3).read()


def trained(model, ds, epochs=3):
    NeuralTrainer(max_epochs=epochs, batch_size=128, enable_progress_bar=False).fit(
        model, ds.interactions, None, Evaluator(progress=False)
    )
    return model


def test_without_modalities_it_is_bpr_mf(syn):
    a = trained(BPR(embedding_dim=8, reg=1e-3, init_std=0.1), syn)  # the same initial scale on both sides
    b = FusionRec(embedding_dim=8, reg=1e-3, init_std=0.1, fusion=EarlyFusion())
    b.set_features({})
    trained(b, syn)
    users = torch.arange(10)
    assert torch.allclose(a.score(users), b.score(users), atol=1e-6)


TOWER = ["user_emb.weight", "item_emb.weight"] + [
    f"proj.{m}.{k}.{p}" for m in ("image", "text") for k in (0, 1) for p in ("weight", "bias")
]
FUSION_PARAMS = {
    "early": ["fusion.missing", "fusion.mlp.0.weight", "fusion.mlp.0.bias", "fusion.mlp.3.weight", "fusion.mlp.3.bias"],
    "late": ["fusion.logits"],
}


def reference_scores(p: dict[str, torch.Tensor], feats, name: str, train, epochs: int, reg: float) -> torch.Tensor:
    """FusionRec without user features as its docstring writes it, in plain torch from the initial parameters
    ``p``: items are ``fusion(q_i, Linear(LayerNorm(x_i^m)))`` over the sources id, image, text (a missing
    modality is replaced by the learned ``missing`` row (early) or dropped from the renormalised softmax weights
    (late)), ``score = p_u · item``, BPR loss plus ``reg`` times half the squared norms of ``p_u``, ``q_i``, ``q_j``,
    Adam(lr=1e-3) on the trainer's pairwise batches (128 events, seed 0)."""
    p = {k: v.detach().clone().requires_grad_(True) for k, v in p.items()}
    mods = ["image", "text"]
    x = {m: torch.as_tensor(feats[m].values, dtype=torch.float32) for m in mods}
    has = torch.stack([torch.ones(train.n_items, dtype=torch.bool)] + [torch.as_tensor(feats[m].mask) for m in mods], 1)

    def items() -> torch.Tensor:
        h = [p["item_emb.weight"]]
        for m in mods:
            w, b = p[f"proj.{m}.0.weight"], p[f"proj.{m}.0.bias"]
            z = torch.nn.functional.layer_norm(x[m], (x[m].shape[1],), w, b)
            h.append(z @ p[f"proj.{m}.1.weight"].T + p[f"proj.{m}.1.bias"])
        h = torch.stack(h, 1)  # (items, sources, dim)
        if name == "early":
            h = torch.where(has[..., None], h, p["fusion.missing"].expand_as(h))
            hidden = torch.relu(h.flatten(1) @ p["fusion.mlp.0.weight"].T + p["fusion.mlp.0.bias"])
            return hidden @ p["fusion.mlp.3.weight"].T + p["fusion.mlp.3.bias"]
        w = torch.softmax(p["fusion.logits"], 0) * has
        return (h * (w / w.sum(1, keepdim=True))[..., None]).flatten(1)

    opt = torch.optim.Adam(p.values(), lr=1e-3)
    sampler = PairwiseSampler(train, 128, seed=0)
    for _ in range(epochs):
        for u, i, j in sampler:
            q, pu, e = items(), p["user_emb.weight"][u], p["item_emb.weight"]
            main = -torch.nn.functional.logsigmoid((pu * q[i]).sum(-1) - (pu * q[j]).sum(-1))
            norms = (pu.pow(2).sum(-1) + e[i].pow(2).sum(-1) + e[j].pow(2).sum(-1)) / 2
            opt.zero_grad()
            (main + reg * norms).mean().backward()
            opt.step()
    with torch.no_grad():
        return p["user_emb.weight"] @ items().T


@pytest.mark.parametrize("name, fusion", [("early", EarlyFusion(hidden_dim=16)), ("late", LateFusion())])
def test_without_user_features_it_is_the_documented_model(syn, tmp_path, name, fusion):
    """Given no user features, FusionRec has exactly the item-tower parameters and trains to the scores of a
    plain-torch implementation of its documented formula (started from the same initial parameters)."""
    feats, _, _ = build_features({"image": MultiHotEncoder(), "text": TfidfEncoder()}, syn, tmp_path)
    init = FusionRec(embedding_dim=8, fusion=copy.deepcopy(fusion))
    init.set_features(feats)
    pl.seed_everything(0, verbose=False)  # as NeuralTrainer(seed=0) does before building the model
    init.build(syn.interactions)
    m = FusionRec(embedding_dim=8, fusion=fusion)
    m.set_features(feats)
    m.set_user_features({})
    trained(m, syn, epochs=2)
    assert [n for n, _ in m.named_parameters()] == FUSION_PARAMS[name] + TOWER
    want = reference_scores(dict(init.named_parameters()), feats, name, syn.interactions, epochs=2, reg=m.reg)
    got = m.score(torch.arange(syn.n_users)).detach()
    assert not torch.allclose(got, init.score(torch.arange(syn.n_users)).detach(), atol=1e-3)  # it did train
    # BPR sees score differences only: the early MLP's output bias b adds p_u · b to every item of a user, its
    # gradient is rounding noise that Adam turns into steps of about lr, differently in the two implementations;
    # so compare each user's scores up to that constant (the rankings and the loss do not depend on it)
    centred = lambda s: s - s.mean(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(centred(got), centred(want), atol=2e-6, rtol=1e-4)


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


@pytest.mark.parametrize("user_id_embedding", [True, False])
def test_the_released_model_scores_as_the_model_without_the_user_feature_table(tmp_path, user_id_embedding):
    import io

    ds = Synthetic(n_users=40, n_items=30, interactions_per_user=5, n_factors=6, missing_profile=0.3).read()
    m = profile_model(ds, tmp_path, user_id_embedding)
    released = m.for_release()
    users = torch.arange(40)
    with torch.no_grad():
        torch.testing.assert_close(released.score(users), m.score(users), atol=1e-6, rtol=1e-6)
    assert not released.user_features and not hasattr(released, "user_x") and not hasattr(released, "user_proj")
    assert released.item_emb is m.item_emb and hasattr(m, "user_x") and m.user_features  # the original is unchanged
    buf = io.BytesIO()
    torch.save(released, buf)
    x = ds.user_content["profile"].values.astype(np.float32)
    assert x[ds.user_content["profile"].mask][0].tobytes() not in buf.getvalue()
    torch.save(m, buf)
    assert x[ds.user_content["profile"].mask][0].tobytes() in buf.getvalue()  # the check can fail
    plain = FusionRec(embedding_dim=4)
    assert plain.for_release() is plain


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


@pytest.mark.parametrize("text", ["tfidf", "lstm"])
def test_the_whole_catalogue_reads_the_tables_uncopied_with_the_values_of_every_item_looked_up(syn, tmp_path, text):
    """``source_vectors(None)`` (graph fusion, gated scores) skips the lookup of every row: it must give exactly what
    looking up all items in id order gives, for frozen tables and trainable encoders alike."""
    enc = TfidfEncoder() if text == "tfidf" else LSTMEncoder(vocab_size=60, embed_dim=8, hidden_dim=8, max_len=8)
    feats, _, _ = build_features({"image": MultiHotEncoder(), "text": enc}, syn, tmp_path)
    m = FusionRec(embedding_dim=8, fusion=LateFusion())  # any fusion: graph fusion refuses the trainable LSTM
    m.set_features(feats)
    m.build(syn.interactions)
    whole, whole_mask = m.source_vectors(None)
    every, every_mask = m.source_vectors(torch.arange(syn.n_items))
    assert whole.keys() == every.keys() == {"id", "image", "text"}
    for s in whole:
        assert torch.equal(whole[s], every[s]) and torch.equal(whole_mask[s], every_mask[s])
    assert not whole_mask["image"].all()  # the synthetic data's missing posters are masked in both


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
    assert run.data.tags["encoder.text.fit"] == "train"  # vocabulary and IDF of the training items only
    att = [run.data.metrics[f"fusion/attention_{s}"] for s in ("id", "text", "image")]
    assert sum(att) == pytest.approx(1.0, abs=1e-4)
    assert np.isfinite(run.data.metrics["time/encode_s"])


def test_evaluation_runs_in_eval_mode_with_dropout_and_a_trainable_encoder(syn, tmp_path):
    from mmbench.encoders.image import TimmEncoder

    image = TimmEncoder("test_resnet", image_size=16, trainable=True, progress=False)  # BatchNorm inside
    feats, _, _ = build_features({"image": image, "text": TfidfEncoder()}, syn, tmp_path)
    m = FusionRec(embedding_dim=8, fusion=EarlyFusion(hidden_dim=16, dropout=0.5))
    m.set_features(feats)
    trained(m, syn, epochs=1)
    m.train()  # as training leaves it
    bn = next(x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d))
    running = bn.running_mean.clone()
    target = syn.interactions
    runs = [Evaluator(ks=[5, 10], batch_size=b, progress=False).evaluate(m, target, []) for b in (512, 512, 7)]
    for r in runs[1:]:
        for key in runs[0].per_user:
            np.testing.assert_allclose(r.per_user[key], runs[0].per_user[key], atol=1e-12, err_msg=key)
    assert torch.equal(bn.running_mean, running)  # evaluation never updates the BatchNorm statistics
    assert m.training  # the mode is restored
