"""The one LightningModule that trains any NeuralRecommender and validates it by full ranking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import EpochBatches
from mmbench.evaluation.evaluator import Evaluator
from mmbench.evaluation.metrics import metric_key
from mmbench.models.base import NeuralRecommender
from mmbench.privacy.dp import UserLevelDP


class RecModule(pl.LightningModule):
    """``training_step`` is the model's ``loss``; validation ranks all items for the validation users
    (training items masked) and logs ``val/<metric>_at_<k>`` for every metric of the evaluator; given the
    validation ``ratings`` (rating models), also ``val/rmse`` and ``val/mae`` at the end of each validation.
    ``scheduler`` (a partial learning-rate scheduler given the optimizer) steps once per epoch.

    Under DDP (``trainer.devices`` > 1) every process trains on its shard of each batch and ranks its shard of the
    validation users (``shards``: the training and validation batch streams, sharded at ``setup``); the per-user
    results of all processes are gathered, so each validation metric is the mean over every validation user once,
    the value one process computes for the same weights, and rank 0's values are broadcast so that early stopping,
    checkpointing and pruning read the same number on every rank.

    Optimisation is manual, and one ``training_step`` takes a *group* of consecutive batches
    (:class:`~mmbench.data.sampling.GroupedBatches`), one optimizer step each, in the order the automatic loop would
    (zero the gradients, loss, backward, step): the same updates, bit for bit, while Lightning's per-call work (hooks,
    the batch fetcher, the optimisation closure) is paid once per group (``results/overhead/training_loop.md``).

    With ``privacy`` (user-level DP-SGD) each batch of Poisson-sampled users gives one gradient per user, and the
    model's optimizer wrapped in Opacus's DPOptimizer clips them, adds the noise and steps. Nothing computed from the
    training batch is logged then (a loss curve would escape the noise)."""

    def __init__(
        self,
        model: NeuralRecommender,
        evaluator: Evaluator,
        exclude: sp.csr_matrix,
        relevant: sp.csr_matrix,
        monitor: str,
        candidates: np.ndarray | None = None,
        ratings: Interactions | None = None,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
        privacy: UserLevelDP | None = None,
        shards: tuple[EpochBatches, ...] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.evaluator = evaluator
        self.exclude = exclude
        self.relevant = relevant
        self.n_rel = np.asarray(relevant.sum(1)).ravel()
        self.monitor = monitor
        self.candidates = candidates
        self.ratings = ratings
        self.scheduler = scheduler
        self.shards = shards
        self._val_parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        self.privacy = privacy
        self.automatic_optimization = False  # steps are taken in training_step, a group of batches per call
        self._loss_sum: torch.Tensor | None = None
        self._loss_rows = 0
        self.batches_stepped = 0  # training batches, one step of every optimizer each (Lightning counts per optimizer)

    def setup(self, stage: str) -> None:
        for stream in self.shards:  # the process group exists now: each rank takes its part of every batch
            stream.shard(self.trainer.global_rank, self.trainer.world_size)

    def training_step(self, group: list[tuple[torch.Tensor, ...]], batch_idx: int) -> None:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for batch in group:
            for opt in optimizers:
                opt.zero_grad()
            if self.privacy is not None:
                self.privacy.per_user_gradients(self.model, batch)
            else:
                loss = self.model.loss(batch)
                # the loss under the precision's autocast, the backward outside it, as Lightning's automatic loop
                # (custom backward functions, e.g. torch.sparse.mm's, have no bf16 kernels on CPU)
                with torch.autocast(self.device.type, enabled=False):
                    self.manual_backward(loss)
                # the epoch's mean loss over its rows, logged once at the epoch's end: a per-step self.log cost
                # ~1.2 ms (Lightning moves its result metric every call), a sixth of a BPR step on ML-100K (cProfile)
                weighted = loss.detach().double() * len(batch[0])
                self._loss_sum = weighted if self._loss_sum is None else self._loss_sum + weighted
                self._loss_rows += len(batch[0])
            for opt in optimizers:
                opt.step()
            self.batches_stepped += 1

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_rows = None, 0

    def on_train_epoch_end(self) -> None:
        if self._loss_sum is not None:  # under DDP: each process's epoch mean, averaged over the processes
            self.log("train/loss", self._loss_sum / self._loss_rows, prog_bar=True, sync_dist=True)
        if self.scheduler is not None:  # manual optimisation steps its schedulers (after validation, as Lightning)
            schedulers = self.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()

    def on_validation_epoch_start(self) -> None:
        self._val_parts = []

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        users = batch[0].cpu().numpy()
        _, _, hits, full = self.evaluator.rank_batch(self.model, users, self.exclude, self.relevant, self.candidates)
        n_rel = torch.as_tensor(self.n_rel[users], dtype=torch.float64, device=hits.device)
        per_user = self.evaluator.per_user(hits, n_rel, full)
        self._val_parts.append((users, {key: v.cpu().numpy() for key, v in per_user.items()}))

    def on_validation_epoch_end(self) -> None:
        means = self.gathered_means(self._val_parts)
        if self.ratings is not None and self.trainer.is_global_zero:
            means |= self.evaluator.rating_means(self.model, self.ratings)
        if self.trainer.world_size > 1:
            means = self.trainer.strategy.broadcast(means, src=0)
        for key, v in means.items():
            self.log(metric_key(f"val/{key}"), v, on_epoch=True, prog_bar=key == self.monitor, sync_dist=False)

    def gathered_means(self, parts: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, float]:
        """Per metric, the mean over the validation users of every process (each user once, in user order, as
        ``Evaluator.evaluate`` computes it) from each process's ``(users, per-user values)`` parts."""
        if self.trainer.world_size > 1:
            everyone: list[list[tuple[np.ndarray, dict[str, np.ndarray]]] | None] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(everyone, parts)
            parts = [part for rank_parts in everyone for part in rank_parts or []]
        if not parts or not parts[0][1]:
            return {}
        users = np.concatenate([u for u, _ in parts])
        order = np.argsort(users, kind="stable")
        if len(np.unique(users)) != len(users) or len(users) != len(self.val_users):
            raise RuntimeError(
                f"validation ranked {len(users)} users ({len(np.unique(users))} distinct) of {len(self.val_users)}"
            )
        return {key: float(np.concatenate([v[key] for _, v in parts])[order].mean()) for key in parts[0][1]}

    @property
    def val_users(self) -> np.ndarray:
        """The users validation ranks: those with a relevant validation item."""
        return np.flatnonzero(self.n_rel > 0)

    def configure_optimizers(self) -> Any:
        """The model's optimizer (with ``privacy``: the DP optimizer, and under ``privacy.scope=shared`` the users'
        own one) and a scheduler per optimizer, stepped per epoch by :meth:`on_train_epoch_end`."""
        if self.privacy is not None:
            optimizers = self.privacy.optimizers(self.model)
        else:  # one optimizer, or several (model.sparse: lazy Adam for the id tables, Adam for the rest)
            optimizer = self.model.configure_optimizer()
            optimizers = optimizer if isinstance(optimizer, list) else [optimizer]
        if self.scheduler is None:
            return optimizers
        return optimizers, [self.scheduler(o) for o in optimizers]
