"""Random ranking: a seeded hash of (seed, user, item), so scores do not depend on batching."""

from __future__ import annotations

from typing import Self

import torch

from mmbench.data.hashing import mix64
from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender


class Random(Recommender):
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.n_items = 0

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        self.n_items = train.n_items
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        items = torch.arange(self.n_items) if items is None else items.cpu()
        key = (users.cpu().long()[:, None] * self.n_items + items[None, :]) * 1_000_003 + self.seed
        return (mix64(key) >> 40).float() / float(1 << 23)
