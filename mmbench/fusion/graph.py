"""Graph fusion (FREEDOM style): item-item kNN graphs from each modality's features, mixed with an
item-item graph of the training interactions, propagate the item vectors over the catalogue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mmbench.data.graph import cooccurrence_graph, modality_graph, sparse_mm, sym_normalise, to_torch
from mmbench.data.interactions import Interactions
from mmbench.data.tensors import take
from mmbench.fusion.base import Fusion


class GraphFusion(Fusion):
    """``x_i = h_id,i + mean of i's available modality vectors``; item = ``x + S^L x`` with
    ``S = α · norm(co-occurrence kNN) + (1 - α) · Σ_m w_m norm(kNN_m)``, α = ``interaction_weight``.

    The graph is fixed (built once from frozen features and the training interactions). Items without a
    modality have no edges in that modality's graph; a cold item (no training events) is reached through
    the modality graphs only. Needs frozen features; propagates over all items, so it is called with the
    whole catalogue."""

    needs_all_items = True
    additive = True  # propagation is linear in every source's vectors

    def __init__(
        self,
        k: int = 10,
        n_layers: int = 1,
        interaction_weight: float = 0.5,
        modality_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= interaction_weight <= 1:
            raise ValueError(f"fusion.interaction_weight={interaction_weight}: must be in [0, 1]")
        self.k, self.n_layers, self.interaction_weight = k, n_layers, interaction_weight
        self.modality_weights = None if modality_weights is None else list(modality_weights)

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        super().setup(sources, dim, train, features)
        frozen = {s: (features[s].require_frozen("graph fusion"), features[s].mask) for s in sources[1:]}
        mm, _ = modality_graph(frozen, self.k, self.modality_weights, "graph fusion")
        a = self.interaction_weight * sym_normalise(cooccurrence_graph(train, self.k))
        if mm is not None:
            a = a + (1 - self.interaction_weight) * mm
        self.register_buffer("graph", to_torch(a), persistent=False)

    def inputs(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each source's share of ``x``: ``h_id``, and each modality's vectors over the item's available count."""
        mods = self.sources[1:]
        if not mods:
            return {"id": h["id"]}
        count = torch.stack([mask[s] for s in mods], 1).float().sum(1, keepdim=True).clamp_min(1)
        return {"id": h["id"]} | {s: h[s] * mask[s][:, None] / count for s in mods}

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        out, z = x, x
        for _ in range(self.n_layers):
            z = sparse_mm(self.graph, z)
            out = out + z
        return out

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        x = h["id"]
        mods = self.sources[1:]
        if mods:
            m = torch.stack([mask[s] for s in mods], 1).float()
            content = torch.stack([h[s] for s in mods], 1)
            x = x + (content * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
        return take(self.propagate(x), items)

    def gated(
        self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor, gates: torch.Tensor
    ) -> torch.Tensor:
        """``h`` covers the catalogue, ``gates`` one row per entry of ``items``: a gate scales its source for every
        item, which propagation mixes linearly, so each source is propagated alone and weighted per row."""
        parts = self.inputs(h, mask)
        return sum(gates[:, k, None] * take(self.propagate(parts[s]), items) for k, s in enumerate(self.sources))
