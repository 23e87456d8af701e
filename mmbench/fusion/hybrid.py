"""Hybrid fusion: an early-fusion score plus the late-fusion per-source scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion
from mmbench.fusion.early import EarlyFusion
from mmbench.fusion.late import LateFusion


class HybridFusion(Fusion):
    """``score = <p_u^early, MLP([h_s])> + Σ_s w_s <p_u^s, h_s>``: the item vector is the concatenation
    of the early and the late item vectors (user vector ``dim + len(sources) * dim``)."""

    def __init__(self, hidden_dim: int = 128, dropout: float = 0.0, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.early = EarlyFusion(hidden_dim, dropout)
        self.late = LateFusion(weights)

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        self.early.setup(sources, dim, train, features)
        self.late.setup(sources, dim, train, features)

    @property
    def user_dim(self) -> int:
        return self.early.user_dim + self.late.user_dim

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.early(h, mask, items), self.late(h, mask, items)], 1)

    def item_weights(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.late.item_weights(h, mask)

    def diagnostics(self) -> dict[str, float]:
        return self.late.diagnostics()
