"""Every multimodal model and neural CF baseline trains and ranks under bf16 autocast
(``trainer.precision=bf16-mixed``).

The GPU run of these precisions is ``scripts/gpu_check_mm.py``; on CPU, Lightning's bf16-mixed uses CPU
autocast, so the same code paths (sparse graph products, attention softmax, masked modalities, the
trainable CNN/LSTM) are exercised here without a GPU. This test found that graph fusion, FREEDOM and
LightGCN failed in backward under autocast (sparse products; fixed by ``mmbench.data.graph.sparse_mm``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from mmbench.config import compose
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features
from mmbench.encoders.image import SeedCNN
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import LSTMEncoder, TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer

MODELS = [f"fusion_rec fusion@model.fusion={f}" for f in ("early", "late", "hybrid", "attention", "gated", "graph")]
MODELS += ["vbpr", "freedom", "bm3", "lattice", "lightgcn", "bpr", "multivae", "seed_cnn_lstm_personal"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bf16")
    ds = Synthetic(n_users=40, n_items=60, interactions_per_user=8, image_size=8, missing_image=0.2).read()
    split = load_or_create(ds, RandomSplit(), tmp / "splits")
    frozen, _, _ = build_features({"image": MultiHotEncoder(), "text": TfidfEncoder()}, ds, tmp / "cache")
    trainable, _, _ = build_features(
        {"image": SeedCNN(image_size=8, out_dim=8), "text": LSTMEncoder(vocab_size=50, embed_dim=8, hidden_dim=8)},
        ds,
        tmp / "cache",
    )
    return split, frozen, trainable


@pytest.mark.parametrize("choice", MODELS)
def test_trains_and_ranks_under_bf16_autocast(data, choice):
    split, frozen, trainable = data
    name, *overrides = choice.split()
    cfg = compose([f"model={name}", *overrides])
    model = instantiate(cfg.model)
    if model.capabilities.item_features:
        model.set_features(trainable if name.startswith("seed") else frozen)
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)
    trainer = NeuralTrainer(max_epochs=2, batch_size=128, precision="bf16-mixed", enable_progress_bar=False)
    report = trainer.fit(model, split.train, split.val, ev)
    assert report.best_epoch is not None and np.isfinite(report.best_score)
    with torch.no_grad():
        scores = model.score(torch.arange(5))
    assert scores.shape == (5, 60) and torch.isfinite(scores).all()
    assert np.isfinite(ev.evaluate(model, split.test, [split.train, split.val]).means["ndcg@10"])
