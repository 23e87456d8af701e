"""Most popular: every user gets items ranked by their number of training events."""

from __future__ import annotations

from typing import Self

import numpy as np
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender


class Pop(Recommender):
    def __init__(self) -> None:
        self.counts: torch.Tensor | None = None

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        self.counts = torch.as_tensor(np.bincount(train.items, minlength=train.n_items), dtype=torch.float32)
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        row = self.counts if items is None else self.counts[items.cpu()]
        return row.unsqueeze(0).repeat(len(users), 1)
