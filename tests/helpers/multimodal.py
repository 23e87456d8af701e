"""Shared helpers for multimodal model tests: a cold-item split of the synthetic data and its features."""

from __future__ import annotations

import numpy as np

from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.topn.random import Random
from mmbench.splits import load_or_create
from mmbench.splits.splitters import ColdItemSplit
from mmbench.training import NeuralTrainer


def cold_setup(tmp_path, n_users=200, n_items=200):
    ds = Synthetic(n_users=n_users, n_items=n_items, interactions_per_user=12, missing_image=0.2).read()
    split = load_or_create(ds, ColdItemSplit(0.1, 0.2, seed=0), tmp_path / "splits")
    feats, _, _ = build_features({"image": MultiHotEncoder(), "text": TfidfEncoder()}, ds, tmp_path / "cache")
    return ds, split, feats


def cold_ndcg(model, split, epochs=15) -> tuple[float, float]:
    """Test NDCG@10 among the held-out (cold) items of the model, and of random ranking."""
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False, candidates="target")
    NeuralTrainer(max_epochs=epochs, batch_size=256, patience=epochs, enable_progress_bar=False).fit(
        model, split.train, split.val, ev
    )
    got = ev.evaluate(model, split.test, [split.train, split.val]).means["ndcg@10"]
    rnd = Random(seed=0).fit(split.train)
    base = ev.evaluate(rnd, split.test, [split.train, split.val]).means["ndcg@10"]
    return float(got), float(np.asarray(base))
