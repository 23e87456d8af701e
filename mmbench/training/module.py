"""The one LightningModule that trains any NeuralRecommender and validates it by full ranking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.evaluation.evaluator import Evaluator
from mmbench.evaluation.metrics import metric_key
from mmbench.models.base import NeuralRecommender
from mmbench.privacy.dp import UserLevelDP


class RecModule(pl.LightningModule):
    """``training_step`` is the model's ``loss``; validation ranks all items for the validation users
    (training items masked) and logs ``val/<metric>_at_<k>`` for every metric of the evaluator; given the
    validation ``ratings`` (rating models), also ``val/rmse`` and ``val/mae`` at the end of each validation.
    ``scheduler`` (a partial learning-rate scheduler given the optimizer) steps once per epoch.

    With ``privacy`` (user-level DP-SGD) optimisation is manual: each batch of Poisson-sampled users gives one
    gradient per user, and the model's optimizer wrapped in Opacus's DPOptimizer clips them, adds the noise and
    steps. Nothing computed from the training batch is logged then (a loss curve would escape the noise)."""

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
        self.privacy = privacy
        self.automatic_optimization = privacy is None

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor | None:
        if self.privacy is not None:
            optimizers = self.optimizers()
            optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
            for opt in optimizers:
                opt.zero_grad()
            self.privacy.per_user_gradients(self.model, batch)
            for opt in optimizers:
                opt.step()
            return None
        loss = self.model.loss(batch)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        users = batch[0].cpu().numpy()
        _, _, hits, full = self.evaluator.rank_batch(self.model, users, self.exclude, self.relevant, self.candidates)
        n_rel = torch.as_tensor(self.n_rel[users], dtype=torch.float64, device=hits.device)
        for key, v in self.evaluator.per_user(hits, n_rel, full).items():
            self.log(
                metric_key(f"val/{key}"),
                v.float().mean(),
                on_epoch=True,
                batch_size=len(users),
                sync_dist=True,
                prog_bar=key == self.monitor,
            )

    def on_validation_epoch_end(self) -> None:
        if self.ratings is None:
            return
        for key, v in self.evaluator.rating_means(self.model, self.ratings).items():
            self.log(f"val/{key}", v, on_epoch=True, prog_bar=key == self.monitor)

    def on_train_epoch_end(self) -> None:
        if self.privacy is not None and self.scheduler is not None:  # manual optimisation steps its schedulers
            schedulers = self.lr_schedulers()
            for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
                scheduler.step()

    def configure_optimizers(self) -> Any:
        if self.privacy is not None:  # the DP optimizer, and with privacy.scope=shared the users' own one
            optimizers = self.privacy.optimizers(self.model)
            if self.scheduler is None:
                return optimizers
            return optimizers, [self.scheduler(o) for o in optimizers]
        optimizer = self.model.configure_optimizer()
        if self.scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler(optimizer), "interval": "epoch"}}
