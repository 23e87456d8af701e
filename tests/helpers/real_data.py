"""Short real-data sanity runs: ML-100K(-MM) split 80/10/10 per user, validation NDCG@20 of a briefly trained model
against popularity (validation only: these checks select nothing and never read the test part)."""

from __future__ import annotations

from pathlib import Path

from mmbench.data.interactions import Dataset
from mmbench.encoders import build_features
from mmbench.encoders.base import ModalityFeatures
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.base import NeuralRecommender
from mmbench.models.topn.pop import Pop
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer


def warm_split(ds: Dataset, tmp_path: Path):
    return load_or_create(ds, RandomSplit(0.1, 0.1, seed=0), tmp_path / "splits")


def cheap_features(ds: Dataset, train, tmp_path: Path) -> dict[str, ModalityFeatures]:
    """ML-100K-MM's ``text`` as TF-IDF (fitted on training items) and ``genres`` multi-hot: real item content
    that takes milliseconds, so the check needs no image or sentence-transformer extraction."""
    enc = {"text": TfidfEncoder(), "genres": MultiHotEncoder()}
    return build_features(enc, ds, tmp_path / "cache", train)[0]


def val_ndcg_vs_pop(model: NeuralRecommender, split, epochs: int, batch_size: int = 2048) -> tuple[float, float]:
    """Validation NDCG@20 after ``epochs`` epochs (best epoch restored), and Pop's."""
    ev = Evaluator(ks=[20], metrics=["ndcg"], progress=False)
    NeuralTrainer(
        max_epochs=epochs, batch_size=batch_size, monitor="ndcg@20", patience=epochs, enable_progress_bar=False
    ).fit(model, split.train, split.val, ev)
    got = float(ev.evaluate(model, split.val, [split.train]).means["ndcg@20"])
    pop = float(ev.evaluate(Pop().fit(split.train), split.val, [split.train]).means["ndcg@20"])
    return got, pop
