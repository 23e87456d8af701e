"""Attention fusion: per-item softmax weights over the sources it has."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion


class AttentionFusion(Fusion):
    """``a_s = softmax_s(v · tanh(W h_s))`` over the item's available sources, item = ``Σ_s a_s h_s``.

    The weights of the last call are kept (``last_weights``); the model computes them for the whole
    catalogue after training and logs their mean per source (``fusion/attention_<source>``), so one can
    see which modality the model relies on."""

    def __init__(self, attention_dim: int = 32) -> None:
        super().__init__()
        self.attention_dim = attention_dim
        self.last_weights: torch.Tensor | None = None

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        self.proj = nn.Linear(dim, self.attention_dim)
        self.query = nn.Linear(self.attention_dim, 1, bias=False)

    def weights(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        logits = self.query(torch.tanh(self.proj(x))).squeeze(-1)
        return torch.softmax(logits.masked_fill(~m, float("-inf")), 1)

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        x, m = self.stacked(h, mask)
        a = self.weights(x, m)
        self.last_weights = a.detach()
        return (a[..., None] * x).sum(1)

    def item_weights(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a = self.weights(*self.stacked(h, mask))
        return {s: a[:, k] for k, s in enumerate(self.sources)}

    def diagnostics(self) -> dict[str, float]:
        if self.last_weights is None:
            return {}
        mean = self.last_weights.float().mean(0)
        return {f"fusion/attention_{s}": float(v) for s, v in zip(self.sources, mean)}
