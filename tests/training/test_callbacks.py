"""conf/callbacks: early stopping and checkpoint settings reach neural training; the defaults are the trainer's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR, compose, validate
from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    ds = Preprocess()(Synthetic(n_users=150, n_items=200, seed=0).read())
    return load_or_create(ds, RandomSplit(), tmp_path_factory.mktemp("splits"))


def configured(tmp_path: Path, *overrides: str) -> NeuralTrainer:
    """The trainer as the pipeline builds it: the trainer config plus the callbacks group."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(["model=bpr", "trainer.enable_progress_bar=false", *overrides])
    validate(cfg)
    cb = cfg.callbacks
    return instantiate(
        cfg.trainer, checkpoint_dir=str(tmp_path), early_stopping=cb.early_stopping, checkpoint=cb.model_checkpoint
    )


def test_defaults_are_the_former_trainer_settings():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(["model=bpr"])
    es, ckpt = cfg.callbacks.early_stopping, cfg.callbacks.model_checkpoint
    assert (es.patience, es.min_delta) == (10, 0.0)  # conf/trainer/cpu.yaml had patience 10, min_delta 0
    assert (ckpt.filename, ckpt.save_top_k, ckpt.save_weights_only) == ("best", 1, True)
    assert "patience" not in cfg.trainer  # one place for each setting


def test_config_callbacks_stop_and_select_as_the_trainer_did(split, tmp_path):
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)
    common = ["trainer.max_epochs=40", "trainer.batch_size=256", "trainer.monitor=ndcg@10"]
    a = configured(tmp_path / "a", *common, "callbacks.early_stopping.patience=3").fit(
        BPR(embedding_dim=16), split.train, split.val, ev
    )
    b = NeuralTrainer(max_epochs=40, batch_size=256, patience=3, enable_progress_bar=False).fit(
        BPR(embedding_dim=16), split.train, split.val, ev
    )
    assert a.epochs < 40  # it did stop early
    assert (a.epochs, a.best_epoch, a.best_score) == (b.epochs, b.best_epoch, pytest.approx(b.best_score, abs=1e-7))
    assert a.checkpoint == str(tmp_path / "a" / "best.ckpt")
    # patience 1 stops sooner than patience 3 on the same run
    c = configured(tmp_path / "c", *common, "callbacks.early_stopping.patience=1").fit(
        BPR(embedding_dim=16), split.train, split.val, ev
    )
    assert c.epochs - c.best_epoch == 2 and a.epochs - a.best_epoch == 4  # stops `patience` epochs after the best


def test_checkpoint_settings_are_the_configs(split, tmp_path):
    ev = Evaluator(ks=[10], metrics=["ndcg"], progress=False)
    rep = configured(tmp_path, "trainer.max_epochs=2", "callbacks.model_checkpoint.filename=kept").fit(
        BPR(embedding_dim=8), split.train, split.val, ev
    )
    assert rep.checkpoint == str(tmp_path / "kept.ckpt") and Path(rep.checkpoint).is_file()
