"""The Lightning callback of Optuna trials: pruning from the validation loop (``callbacks.optuna_pruning``)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl


class OptunaPruning(pl.Callback):
    """Reports the monitored validation metric to an Optuna trial each epoch; raises TrialPruned when told to."""

    def __init__(self, trial: Any, key: str) -> None:
        self.trial, self.key = trial, key

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking or self.key not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        self.trial.report(float(trainer.callback_metrics[self.key]), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned at epoch {epoch}")
