"""FusionRec: reduces to BPR-MF without modalities; with content it ranks cold items far above random."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import LSTMEncoder, TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.fusion import AttentionFusion, EarlyFusion, GraphFusion
from mmbench.models.bpr import BPR
from mmbench.models.fusion_rec import FusionRec
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
    common = ["split=cold_item", "eval.candidates=target", "trainer.max_epochs=20", "trainer.patience=20"]
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
