"""The Lightning callback of Optuna trials: pruning from the validation loop (``callbacks.optuna_pruning``)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class OptunaPruning(pl.Callback):
    """Reports the monitored validation metric to an Optuna trial each epoch; raises TrialPruned when told to.

    Under DDP only rank 0 holds the ``trial`` (the other ranks pass None): it reports, asks the pruner and broadcasts
    the decision, so that every rank stops at the same validation (a rank left training would wait forever)."""

    def __init__(self, trial: Any | None, key: str) -> None:
        self.trial, self.key = trial, key

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking or self.key not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        prune = False
        if trainer.is_global_zero:
            if self.trial is None:
                raise ValueError("OptunaPruning: rank 0 needs the trial to report to")
            self.trial.report(float(trainer.callback_metrics[self.key]), step=epoch)
            prune = self.trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            number = self.trial.number if self.trial is not None else "(rank 0's)"
            raise optuna.TrialPruned(f"trial {number} pruned at epoch {epoch}")
