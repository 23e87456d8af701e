"""Graph fusion (FREEDOM style): item-item kNN graphs from each modality's features, mixed with an
item-item graph of the training interactions, propagate the item vectors over the catalogue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.fusion.base import Fusion


def knn_graph(x: np.ndarray, mask: np.ndarray | None, k: int, chunk: int = 1024) -> sp.csr_matrix:
    """0/1 graph linking each available item to its ``k`` most cosine-similar available items (not itself).

    Items without the modality (``mask`` False) get no edges. Similarities are computed ``chunk`` rows at
    a time, so no dense ``n x n`` matrix is held for large catalogues."""
    n = len(x)
    avail = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    idx = np.flatnonzero(avail)
    k = min(k, len(idx) - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    z = torch.as_tensor(np.asarray(x, np.float32)[idx])
    z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    rows, cols = [], []
    for s in range(0, len(idx), chunk):
        sim = z[s : s + chunk] @ z.T
        sim[torch.arange(sim.shape[0]), torch.arange(s, s + sim.shape[0])] = float("-inf")
        top = torch.topk(sim, k, dim=1).indices.numpy()
        rows.append(np.repeat(idx[s : s + chunk], k))
        cols.append(idx[top.ravel()])
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n, n))


def cooccurrence_graph(train: Interactions, k: int) -> sp.csr_matrix:
    """0/1 graph linking each item to the ``k`` items most often consumed by the same training users."""
    x = train.to_csr()
    c = (x.T @ x).tocsr().astype(np.float32)
    c.setdiag(0)
    c.eliminate_zeros()
    rows, cols = [], []
    for i in range(c.shape[0]):  # per item, over its stored co-occurrences only (sparse rows)
        s, e = c.indptr[i], c.indptr[i + 1]
        if e > s:
            top = np.argsort(-c.data[s:e], kind="stable")[:k]
            rows.append(np.full(len(top), i))
            cols.append(c.indices[s:e][top])
    n = train.n_items
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    r, cc = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, cc)), shape=(n, n))


def sym_normalise(a: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the symmetrised graph (isolated nodes stay zero rows)."""
    a = a.maximum(a.T).tocsr().astype(np.float32)
    d = np.asarray(a.sum(1)).ravel()
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0).astype(np.float32)
    return sp.diags(inv) @ a @ sp.diags(inv)


def to_torch(a: sp.spmatrix) -> torch.Tensor:
    a = a.tocoo()
    idx = torch.as_tensor(np.vstack([a.row, a.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(idx, torch.as_tensor(a.data, dtype=torch.float32), a.shape).coalesce()


def sparse_mm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` for a sparse float32 ``a``, in float32 even under autocast: sparse products have no
    reduced-precision kernels, and a bf16/fp16 ``x`` (e.g. a Linear output under autocast) fails in backward."""
    with torch.autocast(x.device.type, enabled=False):
        return torch.sparse.mm(a, x.float())


def modality_graph(
    features: Mapping, k: int, weights: Sequence[float] | None, who: str
) -> tuple[sp.csr_matrix | None, dict[str, float]]:
    """``Σ_m w_m · norm(kNN_m)`` over the modalities with frozen features (weights normalised to sum 1)."""
    names = list(features)
    if not names:
        return None, {}
    w = [1.0] * len(names) if weights is None else [float(v) for v in weights]
    if len(w) != len(names) or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"{who}: modality_weights={list(w)} need one non-negative weight per modality {names}")
    w = [v / sum(w) for v in w]
    g = None
    for name, wm in zip(names, w):
        f = features[name]
        s = sym_normalise(knn_graph(f.require_frozen(who), f.mask, k)) * wm
        g = s if g is None else g + s
    return g.tocsr(), dict(zip(names, w))


class GraphFusion(Fusion):
    """``x_i = h_id,i + mean of i's available modality vectors``; item = ``x + S^L x`` with
    ``S = α · norm(co-occurrence kNN) + (1 - α) · Σ_m w_m norm(kNN_m)``, α = ``interaction_weight``.

    The graph is fixed (built once from frozen features and the training interactions). Items without a
    modality have no edges in that modality's graph; a cold item (no training events) is reached through
    the modality graphs only. Needs frozen features; propagates over all items, so it is called with the
    whole catalogue."""

    needs_all_items = True

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
        mm, _ = modality_graph({s: features[s] for s in sources[1:]}, self.k, self.modality_weights, "graph fusion")
        a = self.interaction_weight * sym_normalise(cooccurrence_graph(train, self.k))
        if mm is not None:
            a = a + (1 - self.interaction_weight) * mm
        self.register_buffer("graph", to_torch(a), persistent=False)

    def forward(self, h: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], items: torch.Tensor) -> torch.Tensor:
        x = h["id"]
        mods = self.sources[1:]
        if mods:
            m = torch.stack([mask[s] for s in mods], 1).float()
            content = torch.stack([h[s] for s in mods], 1)
            x = x + (content * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
        out, z = x, x
        for _ in range(self.n_layers):
            z = sparse_mm(self.graph, z)
            out = out + z
        return out[items]
