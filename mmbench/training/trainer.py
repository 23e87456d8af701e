"""NeuralTrainer: the trainer config group, wrapping a Lightning Trainer with early stopping, best checkpoint and an
optional learning-rate scheduler (the callbacks and scheduler config groups)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from mmbench.data.interactions import Interactions
from mmbench.evaluation.evaluator import Evaluator
from mmbench.evaluation.metrics import RATING_METRICS, metric_for, metric_key
from mmbench.models.base import NeuralRecommender
from mmbench.privacy.dp import UserLevelDP

if TYPE_CHECKING:  # Lightning is imported by fit (about 5 s): config validation and non-neural runs skip it
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import Logger

log = logging.getLogger(__name__)


@dataclass
class FitReport:
    """What training did: epochs run, the selected (best validation) epoch and its score."""

    epochs: int
    best_epoch: int | None
    best_score: float | None
    monitor: str
    checkpoint: str | None


class NeuralTrainer:
    """Trains a :class:`NeuralRecommender` with Lightning.

    Early stopping and checkpoint selection read ``val/<monitor>`` only; after
    training the best checkpoint's weights are loaded, so that is the model tested.
    ``precision`` is Lightning's: ``32-true`` on CPU, ``16-mixed`` / ``bf16-mixed`` on GPU.

    ``early_stopping`` and ``checkpoint`` are ``_partial_`` Lightning callbacks (``conf/callbacks``) completed
    here with ``monitor`` (``val/<monitor>``), ``mode`` (the metric's direction) and, for the checkpoint, the
    folder; without them, ``EarlyStopping(patience, min_delta)`` and a ``best`` weights-only checkpoint.
    ``scheduler`` (``conf/scheduler``) is a ``_partial_`` ``torch.optim.lr_scheduler`` class given the model's
    optimizer and stepped once per epoch; None keeps the learning rate constant.
    """

    def __init__(
        self,
        max_epochs: int = 50,
        batch_size: int = 2048,
        monitor: str = "ndcg@10",
        patience: int = 10,  # as conf/callbacks/default.yaml: one default, whoever builds the trainer
        min_delta: float = 0.0,
        precision: str = "32-true",
        accelerator: str = "cpu",
        devices: int | str | list[int] = 1,
        strategy: str = "auto",
        check_val_every_n_epoch: int = 1,
        enable_progress_bar: bool = True,
        deterministic: bool = True,
        seed: int = 0,
        checkpoint_dir: str | None = None,
        early_stopping: Callable[..., Any] | None = None,  # a partial pytorch_lightning EarlyStopping
        checkpoint: Callable[..., Any] | None = None,  # a partial pytorch_lightning ModelCheckpoint
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
    ) -> None:
        metric_for(monitor)  # fails early on an unknown metric name
        self.max_epochs, self.batch_size, self.monitor = max_epochs, batch_size, monitor
        self.patience, self.min_delta, self.precision = patience, min_delta, precision
        self.accelerator, self.devices, self.strategy = accelerator, devices, strategy
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.enable_progress_bar, self.deterministic, self.seed = enable_progress_bar, deterministic, seed
        self.checkpoint_dir = checkpoint_dir
        self.early_stopping, self.checkpoint = early_stopping, checkpoint
        self.scheduler = scheduler

    def fit(
        self,
        model: NeuralRecommender,
        train: Interactions,
        val: Interactions | None = None,
        evaluator: Evaluator | None = None,
        logger: Logger | bool = False,
        callbacks: Sequence[pl.Callback] = (),
        privacy: UserLevelDP | None = None,
    ) -> FitReport:
        """Build ``model`` for ``train``'s id space and train it; with ``val``, early stopping and the restored
        checkpoint follow ``val/<monitor>`` as computed by ``evaluator`` (default: ``Evaluator(progress=False)``).
        With ``privacy``, user-level DP-SGD (:mod:`mmbench.privacy.dp`): a model it cannot train fails here, before
        anything is built; ``privacy.spent()`` then says what was spent."""
        import pytorch_lightning as pl
        from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

        from mmbench.training.module import RecModule

        evaluator = Evaluator(progress=False) if evaluator is None else evaluator
        if not model.capabilities.neural:
            raise TypeError(f"{type(model).__name__} is not trained by NeuralTrainer: call model.fit(train, val)")
        if privacy is not None:
            privacy.check(model)
            if self.precision not in ("32-true", "32", 32):  # per-user gradients are taken without a grad scaler
                msg = f"privacy=dp trains in full precision: trainer.precision={self.precision!r}; use 32-true"
                raise ValueError(msg)
        early_stopping = self.early_stopping or partial(EarlyStopping, patience=self.patience, min_delta=self.min_delta)
        checkpoint = self.checkpoint or partial(
            ModelCheckpoint, filename="best", save_top_k=1, save_weights_only=True, auto_insert_metric_name=False
        )
        pl.seed_everything(self.seed, workers=True, verbose=False)
        model.build(train)
        data = (
            model.train_data(train, self.batch_size, self.seed)
            if privacy is None
            else privacy.prepare(model, train, self.max_epochs, self.seed)
        )
        key = metric_key(f"val/{self.monitor}")
        mode = metric_for(self.monitor).mode
        has_val = val is not None and len(val) > 0
        rating_monitor = self.monitor in RATING_METRICS
        if has_val and rating_monitor and (not model.capabilities.predicts_ratings or val.is_implicit):
            raise ValueError(
                f"trainer.monitor={self.monitor!r} needs a model that predicts ratings and rated validation data; "
                f"{type(model).__name__} on {'implicit' if val.is_implicit else 'rated'} data: monitor a ranking metric"
            )
        if has_val and not rating_monitor and self.monitor.split("@")[0] not in evaluator.metrics:
            raise ValueError(f"trainer.monitor={self.monitor!r} is not computed by eval.metrics={evaluator.metrics}")
        if has_val and "@" in self.monitor and int(self.monitor.split("@")[1]) not in evaluator.ks:
            raise ValueError(f"trainer.monitor={self.monitor!r}: K is not in eval.ks={evaluator.ks}")
        module = RecModule(
            model,
            evaluator,
            Evaluator.exclusion([train], train.n_users, train.n_items),
            evaluator.relevant(val) if has_val else Evaluator.exclusion([], train.n_users, train.n_items),
            self.monitor,
            evaluator.candidate_mask(val) if has_val else None,
            val if has_val and rating_monitor else None,
            self.scheduler,
            privacy,
        )
        ckpt_dir = self.checkpoint_dir or tempfile.mkdtemp(prefix="mmbench-ckpt-")
        callbacks = list(callbacks)
        ckpt = None
        if has_val:
            ckpt = checkpoint(dirpath=ckpt_dir, monitor=key, mode=mode)
            callbacks += [ckpt, early_stopping(monitor=key, mode=mode)]
        trainer = pl.Trainer(
            max_epochs=self.max_epochs,
            accelerator=self.accelerator,
            devices=self.devices,
            strategy=self.strategy,
            precision=self.precision,
            logger=logger,
            callbacks=callbacks,
            enable_checkpointing=has_val,
            check_val_every_n_epoch=self.check_val_every_n_epoch,
            num_sanity_val_steps=0,
            limit_val_batches=1.0 if has_val else 0,
            enable_progress_bar=self.enable_progress_bar,
            enable_model_summary=False,
            deterministic=self.deterministic,
            log_every_n_steps=1,
        )
        train_loader = DataLoader(data, batch_size=None)
        val_users = np.flatnonzero(np.asarray(module.relevant.sum(1)).ravel() > 0)
        val_loader = DataLoader(TensorDataset(torch.as_tensor(val_users)), batch_size=evaluator.batch_size)
        trainer.fit(module, train_loader, val_loader if has_val else None)
        best_epoch = best_score = None
        if ckpt is not None and ckpt.best_model_path:
            state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
            best_score = float(ckpt.best_model_score)
            best_epoch = int(state["epoch"])
            log.info("restored best epoch %d (%s=%.5f)", best_epoch, key, best_score)
        # Lightning leaves the module on the CPU after fit: evaluate on the accelerator that trained it
        if self.accelerator != "cpu" and torch.cuda.is_available():
            model.to("cuda")
        return FitReport(trainer.current_epoch, best_epoch, best_score, key, ckpt.best_model_path if ckpt else None)
