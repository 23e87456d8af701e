"""Early (feature-level) fusion: concatenate the source vectors, then an MLP."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion


class EarlyFusion(Fusion):
    """``MLP([h_id; h_m1; ...])``; a missing modality's slot holds a learned "missing" vector."""

    def __init__(self, hidden_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden_dim, self.dropout = hidden_dim, dropout

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        self.missing = nn.Parameter(torch.zeros(len(sources), dim))
        self.mlp = nn.Sequential(
            nn.Linear(len(sources) * dim, self.hidden_dim),
            nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden_dim, dim),
        )

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        x, m = self.stacked(h, mask)
        x = torch.where(m[..., None], x, self.missing.expand_as(x))
        return self.mlp(x.flatten(1))
