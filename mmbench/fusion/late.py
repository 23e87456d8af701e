"""Late (decision-level) fusion: one score per source, combined by fixed or learned weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion


class LateFusion(Fusion):
    """``score = Σ_s w_s · <p_u^s, h_s>`` over the sources the item has, with the weights renormalised
    over those sources. Each source has its own user part ``p_u^s``, so the user vector is
    ``len(sources) * dim`` long and the item vector is the weighted concatenation.

    ``weights``: fixed weights in source order (``id`` first, then the modalities); ``null`` learns them
    (softmax over one logit per source, starting equal)."""

    additive = True  # Σ_s w_s <p_u^s, h_s>: linear in each source vector, zero without them

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        self.fixed = None if weights is None else [float(w) for w in weights]

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        if self.fixed is not None:
            if len(self.fixed) != len(sources) or min(self.fixed) < 0 or sum(self.fixed) <= 0:
                raise ValueError(
                    f"fusion.weights={self.fixed}: need {len(sources)} non-negative weights, one per source {sources}"
                )
            self.register_buffer("logits", torch.log(torch.tensor(self.fixed).clamp_min(1e-12)))
        else:
            self.logits = nn.Parameter(torch.zeros(len(sources)))

    @property
    def user_dim(self) -> int:
        return self.dim * len(self.sources)

    def source_weights(self, m: torch.Tensor) -> torch.Tensor:
        """``(b, S)`` weights: softmax of the logits over the available sources of each item."""
        w = torch.softmax(self.logits, 0).expand(m.shape) * m
        return w / w.sum(1, keepdim=True).clamp_min(1e-12)

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        x, m = self.stacked(h, mask)
        return (x * self.source_weights(m)[..., None]).flatten(1)

    def item_weights(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        _, m = self.stacked(h, mask)
        w = self.source_weights(m)
        return {s: w[:, k] for k, s in enumerate(self.sources)}

    def diagnostics(self) -> dict[str, float]:
        w = torch.softmax(self.logits.detach().float(), 0)
        return {f"fusion/weight_{s}": float(v) for s, v in zip(self.sources, w)}
