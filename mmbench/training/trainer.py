"""NeuralTrainer: the trainer config group, wrapping a Lightning Trainer with early stopping, best checkpoint and an
optional learning-rate scheduler (the callbacks and scheduler config groups)."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import EpochBatches, GroupedBatches, OrderedBatches
from mmbench.evaluation.evaluator import Evaluator
from mmbench.evaluation.metrics import RATING_METRICS, metric_for, metric_key
from mmbench.models.base import NeuralRecommender
from mmbench.privacy.dp import UserLevelDP
from mmbench.training.distributed import launched_rank, processes, weights_digest

if TYPE_CHECKING:  # Lightning is imported by fit (about 5 s): config validation and non-neural runs skip it
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import Logger

log = logging.getLogger(__name__)


@dataclass
class FitReport:
    """What training did: epochs run, the selected (best validation) epoch and its score; under DDP, this process's
    rank of ``world_size`` (every rank holds the same restored weights); ``steps``: training batches stepped, each one
    step of every optimizer the model has (``model.sparse``: two), more than any step Lightning logged a metric at."""

    epochs: int
    best_epoch: int | None
    best_score: float | None
    monitor: str
    checkpoint: str | None  # the best checkpoint file; None unless the trainer was given checkpoint_dir
    rank: int = 0
    world_size: int = 1
    steps: int = 0


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

    ``batches_per_call``: training batches one Lightning ``training_step`` takes, one optimizer step each (see
    :class:`~mmbench.training.module.RecModule`); any value gives the same updates, larger ones pay Lightning's
    per-call overhead less often, and the progress bar advances per call.

    ``devices`` > 1 with ``strategy`` ``ddp`` (or ``auto``) trains with Lightning's DDP, one process per device;
    ``batch_size`` stays the effective batch size (each process takes its shard of every batch, see
    :class:`~mmbench.data.sampling.EpochBatches`), validation gathers every process's per-user results, and after
    training rank 0's best checkpoint is broadcast and checked (SHA-256 of the weights) to be the same on every rank.
    The processes are started by Lightning (re-running the script) or, in ``mmbench`` runs, by the pipeline
    (:class:`~mmbench.training.distributed.RankGroup`). ``ddp_spawn`` and the other pickling strategies are refused.
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
        batches_per_call: int = 64,
    ) -> None:
        metric_for(monitor)  # fails early on an unknown metric name
        if batches_per_call < 1:
            raise ValueError(f"trainer.batches_per_call={batches_per_call} must be at least 1")
        self.processes = processes(devices, accelerator, strategy)  # fails early on unsupported devices / strategy
        self.max_epochs, self.batch_size, self.monitor = max_epochs, batch_size, monitor
        self.patience, self.min_delta, self.precision = patience, min_delta, precision
        self.accelerator, self.devices, self.strategy = accelerator, devices, strategy
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.enable_progress_bar, self.deterministic, self.seed = enable_progress_bar, deterministic, seed
        self.checkpoint_dir = checkpoint_dir
        self.early_stopping, self.checkpoint = early_stopping, checkpoint
        self.scheduler = scheduler
        self.batches_per_call = batches_per_call

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
            if self.processes > 1:  # the accountant counts one process's sampling and noise
                raise ValueError(f"privacy=dp trains on one process: trainer.devices={self.devices!r}; use 1")
            if self.precision not in ("32-true", "32", 32):  # per-user gradients are taken without a grad scaler
                msg = f"privacy=dp trains in full precision: trainer.precision={self.precision!r}; use 32-true"
                raise ValueError(msg)
        early_stopping = self.early_stopping or partial(EarlyStopping, patience=self.patience, min_delta=self.min_delta)
        checkpoint = self.checkpoint or partial(
            ModelCheckpoint, filename="best", save_top_k=1, save_weights_only=True, auto_insert_metric_name=False
        )
        pl.seed_everything(self.seed, workers=True, verbose=False)
        model.build(train)
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
        train_data = (
            model.train_data(train, self.batch_size, self.seed)
            if privacy is None
            else privacy.prepare(model, train, self.max_epochs, self.seed)
        )
        val_users = np.flatnonzero(np.asarray(evaluator.relevant(val).sum(1)).ravel() > 0) if has_val else []
        val_data = OrderedBatches(np.asarray(val_users, dtype=np.int64), evaluator.batch_size)
        module = RecModule(
            model,
            evaluator,
            Evaluator.exclusion([train], train.n_users, train.n_items),
            evaluator.relevant(val) if has_val else Evaluator.exclusion([], train.n_users, train.n_items),
            self.monitor,
            evaluator.candidate_mask(val) if has_val else None,
            val if has_val and rating_monitor else None,
            self.scheduler,
            privacy=privacy,
            shards=tuple(d for d in (train_data, val_data) if isinstance(d, EpochBatches)),
        )
        # without checkpoint_dir the best checkpoint lives in a temporary folder, removed once its weights are loaded
        own = None if self.checkpoint_dir else tempfile.TemporaryDirectory(prefix="mmbench-ckpt-")
        with own if own is not None else nullcontext(self.checkpoint_dir) as ckpt_dir:
            callbacks = list(callbacks)
            ckpt = None
            if has_val:
                ckpt = checkpoint(dirpath=ckpt_dir, monitor=key, mode=mode)
                callbacks += [ckpt, early_stopping(monitor=key, mode=mode)]
            plugins = None
            if launched_rank() is not None:  # a group the pipeline started: its variables, whatever cluster this is on
                from lightning_fabric.plugins.environments import LightningEnvironment

                plugins = [LightningEnvironment()]
            trainer = pl.Trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=self.devices,
                # one process: never a process group (Lightning's ddp would set this process's rank variables)
                strategy="auto" if self.processes == 1 and str(self.strategy).startswith("ddp") else self.strategy,
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
                use_distributed_sampler=False,  # the batch streams shard themselves (EpochBatches)
                plugins=plugins,
            )
            train_loader = DataLoader(GroupedBatches(train_data, self.batches_per_call), batch_size=None)
            val_loader = DataLoader(val_data, batch_size=None)
            with warnings.catch_warnings():  # validation metrics are gathered, then logged unsynced on purpose
                warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
                trainer.fit(module, train_loader, val_loader if has_val else None)
            rank, world = trainer.global_rank, trainer.world_size
            best_epoch = best_score = None
            best = None
            # rank 0 wrote the checkpoint; the others receive its weights
            if ckpt is not None and ckpt.best_model_path and rank == 0:
                state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)
                best = (state["state_dict"], int(state["epoch"]), float(ckpt.best_model_score))
        if world > 1:
            best = trainer.strategy.broadcast(best, src=0)
        if best is not None:
            state_dict, best_epoch, best_score = best
            module.load_state_dict(state_dict)
            log.info("restored best epoch %d (%s=%.5f)", best_epoch, key, best_score)
        if world > 1:
            digests: list[str | None] = [None] * world
            torch.distributed.all_gather_object(digests, weights_digest(module))
            if len(set(digests)) != 1:
                raise RuntimeError(f"DDP ranks hold different weights after training: SHA-256 per rank {digests}")
        # Lightning leaves the module on the CPU after fit: evaluate on the accelerator that trained it
        if self.accelerator != "cpu" and torch.cuda.is_available():
            model.to("cuda")
        return FitReport(
            trainer.current_epoch,
            best_epoch,
            best_score,
            key,
            ckpt.best_model_path if ckpt and self.checkpoint_dir else None,
            rank,
            world,
            module.batches_stepped,
        )
