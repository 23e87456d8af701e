"""Gated fusion: each modality enters the id embedding through an element-wise sigmoid gate."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion


class GatedFusion(Fusion):
    """``item = h_id + Σ_m [m available] · σ(W_m [h_id; h_m]) ⊙ h_m``; the mean gate per modality is logged."""

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        self.gates = nn.ModuleDict({s: nn.Linear(2 * dim, dim) for s in sources[1:]})
        self.last_gates: dict[str, float] = {}

    def gate(self, s: str, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(b, dim)`` gate of modality ``s``, zero where an item lacks it."""
        return torch.sigmoid(self.gates[s](torch.cat([h["id"], h[s]], 1))) * mask[s][:, None]

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        out = h["id"]
        for s in self.gates:
            g = self.gate(s, h, mask)
            self.last_gates[s] = float(g.detach().mean())
            out = out + g * h[s]
        return out

    def item_weights(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality's gate, averaged over the vector's dimensions (the id embedding enters ungated)."""
        return {s: self.gate(s, h, mask).mean(1) for s in self.gates}

    def diagnostics(self) -> dict[str, float]:
        return {f"fusion/gate_{s}": v for s, v in self.last_gates.items()}
