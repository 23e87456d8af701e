"""The recommender interfaces: classic models fit in closed form or vectorised code, neural ones via Lightning."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Self

import torch
from torch import nn
from torch.utils.data import IterableDataset

from mmbench.data.interactions import Interactions


class Recommender(ABC):
    """``fit(train, val)`` then ``score(users)``: one row of item scores per user.

    ``score`` returns a new float tensor (callers mask it in place), on ``device``.
    Models that predict ratings also implement ``predict(users, items)``.
    """

    @abstractmethod
    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        """Learn from ``train``; ``val`` may be read for early stopping, never the test set."""

    @abstractmethod
    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``[len(users), n_items]`` (or ``[len(users), len(items)]`` for given items)."""

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class NeuralRecommender(nn.Module, Recommender):
    """A torch module with a ``loss(batch)``; :class:`mmbench.training.NeuralTrainer` fits any of them.

    ``build(train)`` creates the parameters once the id space is known; ``train_data``
    gives the per-epoch training batches.
    """

    def __init__(self) -> None:
        super().__init__()

    @abstractmethod
    def build(self, train: Interactions) -> None:
        """Create parameters for ``train``'s id space (called once, before training)."""

    @abstractmethod
    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Scalar training loss of one batch."""

    @abstractmethod
    def train_data(self, train: Interactions, batch_size: int, seed: int) -> IterableDataset:
        """Batches of one epoch; iterating again gives the next epoch."""

    optimizer: Callable[..., torch.optim.Optimizer] | None = None  # set from the config's `model.optimizer`

    def configure_optimizer(self) -> torch.optim.Optimizer:
        """The model's ``optimizer`` (a ``_partial_`` config) over its parameters; Adam(lr=1e-3) without one."""
        if self.optimizer is None:
            return torch.optim.Adam(self.parameters(), lr=1e-3)
        return self.optimizer(self.parameters())

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        """Neural models are fitted by the trainer, which sits above the models: ``NeuralTrainer().fit(model,
        train, val)`` (the pipeline's fit stage does it with the run's ``trainer`` config)."""
        raise TypeError(
            f"{type(self).__name__} is trained by mmbench.training.NeuralTrainer: call "
            "NeuralTrainer(...).fit(model, train, val) instead of model.fit(train, val)"
        )

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")
