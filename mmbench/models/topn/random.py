"""Random ranking: a seeded hash of (seed, user, item), so scores do not depend on batching."""

from __future__ import annotations

from typing import Self

import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender

_MASK = (1 << 63) - 1


def mix64(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit integer mixer (SplitMix64 finaliser, arithmetic wraps in int64); non-negative output."""
    x = x ^ (x >> 31)
    x = x * -4658895280553007687  # 0xbf58476d1ce4e5b9 as signed int64
    x = x ^ (x >> 27)
    x = x * -7723592293110705685  # 0x94d049bb133111eb as signed int64
    x = x ^ (x >> 31)
    return x & _MASK


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
