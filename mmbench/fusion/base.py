"""Fusion strategies: per-source item vectors (the item id embedding and one projected vector per
modality) into the item representation that a user vector is scored against by a dot product.

Every fusion is an ``nn.Module`` with

* ``setup(sources, dim, train, features)``: create parameters once the sources are known
  (``sources[0]`` is ``"id"``, the interaction embedding; the rest are modalities);
* ``user_dim``: the size of the user vector (late fusion scores each source with its own user part);
* ``forward(h, mask, items)``: ``h[s]`` is ``(b, dim)``, ``mask[s]`` ``(b,)`` bool (False: item lacks that
  modality), returns ``(b, user_dim)``. A missing modality never contributes: it is dropped from sums,
  softmaxes and weight normalisation, and replaced by a learned "missing" vector where a fixed-size
  input is needed (early fusion);
* ``needs_all_items``: graph fusion propagates over the whole catalogue, so it is called with every item;
* ``diagnostics()``: numbers to log (e.g. mean attention weight per source);
* ``gated(h, mask, items, gates)``: the forward pass with source ``s``'s vectors scaled by ``gates[:, s]``
  (one row of gates per output row), the path that explanations integrate along (:mod:`mmbench.evaluation.explain`);
  ``additive``: the output is linear in the gates and zero at gates 0, so the gradient at gates 1 is an exact
  decomposition; ``item_weights(h, mask)``: the per-item weight each source gets (attention, gates), if any.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mmbench.data.interactions import Interactions


class Fusion(nn.Module):
    """Base class; subclasses implement ``setup`` and ``forward``."""

    needs_all_items: bool = False
    additive: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.dim = 0

    def setup(self, sources: list[str], dim: int, train: Interactions, features: Mapping) -> None:
        if not sources or sources[0] != "id":
            raise ValueError(f"{type(self).__name__}: sources must start with 'id', got {sources}")
        self.sources, self.dim = list(sources), dim

    @property
    def user_dim(self) -> int:
        return self.dim

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def diagnostics(self) -> dict[str, float]:
        return {}

    def gated(
        self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor, gates: torch.Tensor
    ) -> torch.Tensor:
        """``forward`` with each source's vectors scaled by its gate: ``gates`` is ``(b, len(sources))``, one row per
        row of ``h`` (an item's output depends on that item's vectors only; graph fusion overrides this)."""
        return self({s: h[s] * gates[:, k, None] for k, s in enumerate(self.sources)}, mask, items)

    def item_weights(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per source, the ``(b,)`` weight this fusion gives it for each item (attention, gates); none by default."""
        return {}

    def stacked(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(b, S, dim)`` vectors and ``(b, S)`` availability in source order."""
        return torch.stack([h[s] for s in self.sources], 1), torch.stack([mask[s] for s in self.sources], 1)
