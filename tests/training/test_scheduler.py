"""conf/scheduler: the learning rate of neural training per epoch, none / step / cosine."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
from hydra import initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR, compose, validate
from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit

LR = 0.01


class RecordLR(pl.Callback):
    """The optimizer's learning rate at the start of every training epoch."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    ds = Preprocess()(Synthetic(n_users=60, n_items=80, seed=0).read())
    return load_or_create(ds, RandomSplit(), tmp_path_factory.mktemp("splits"))


def lrs(split, *overrides: str) -> list[float]:
    """Per-epoch learning rates of BPR trained 4 epochs by the trainer the config builds."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            ["model=bpr", "trainer.max_epochs=4", "trainer.enable_progress_bar=false", *overrides],
        )
    validate(cfg)
    trainer = instantiate(cfg.trainer, early_stopping=cfg.callbacks.early_stopping)
    model = BPR(embedding_dim=8, optimizer=instantiate(cfg.model.optimizer, lr=LR))
    record = RecordLR()
    trainer.fit(model, split.train, split.val, Evaluator(progress=False), callbacks=[record])
    return record.lrs


def test_no_scheduler_by_default_keeps_the_learning_rate(split):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        assert compose(["model=bpr"]).trainer.scheduler is None
    assert lrs(split) == pytest.approx([LR] * 4)


def test_step_halves_the_learning_rate_every_step_size_epochs(split):
    assert lrs(split, "scheduler=step", "trainer.scheduler.step_size=1") == pytest.approx([LR, LR / 2, LR / 4, LR / 8])
    assert lrs(split, "scheduler=step", "trainer.scheduler.step_size=2", "trainer.scheduler.gamma=0.1") == (
        pytest.approx([LR, LR, LR / 10, LR / 10])
    )


def test_cosine_anneals_over_max_epochs(split):
    # T_max = trainer.max_epochs = 4: lr_e = lr (1 + cos(pi e / 4)) / 2
    assert lrs(split, "scheduler=cosine") == pytest.approx([LR * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
