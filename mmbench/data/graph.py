"""Graph operators shared by graph fusion, LightGCN and FREEDOM: kNN and co-occurrence item graphs, the
user-item bipartite graph, symmetric normalisation, and sparse products that stay float32 under autocast.

Graphs are scipy matrices while built (numpy, on the CPU) and torch sparse tensors (``to_torch``) when used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions


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


def sym_normalise(a: sp.spmatrix, dtype: type = np.float32) -> sp.csr_matrix:
    """``D^-1/2 A D^-1/2`` of the symmetrised graph, computed in ``dtype`` (isolated nodes stay zero rows)."""
    a = a.maximum(a.T).tocsr().astype(dtype)
    d = np.asarray(a.sum(1)).ravel()
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0).astype(dtype)
    return sp.diags(inv) @ a @ sp.diags(inv)


def to_torch(a: sp.spmatrix) -> torch.Tensor:
    """A symmetric scipy matrix as the float32 torch CSR tensor that ``sparse_mm`` multiplies by. Every graph of
    mmbench is symmetric (``sym_normalise`` symmetrises), and ``sparse_mm``'s backward relies on it, so a
    non-symmetric ``a`` is refused."""
    a = sp.csr_matrix(a, dtype=np.float32)
    a.sum_duplicates()
    if a.shape[0] != a.shape[1] or (a.nnz and abs(a - a.T).max() > 1e-6 * abs(a).max()):
        raise ValueError(f"graph of shape {a.shape} is not symmetric: sparse_mm's backward needs aᵀ = a")
    a.sort_indices()
    # int32 indices where they fit: MKL's (and cuSPARSE's) kernels take them as they are, int64 ones were converted
    # to int32 on every product (two copies of the indices per call; LightGCN's step on ML-100K does six products)
    index = torch.int32 if max(a.nnz, a.shape[0]) < np.iinfo(np.int32).max else torch.int64
    return torch.sparse_csr_tensor(
        torch.as_tensor(a.indptr, dtype=index),
        torch.as_tensor(a.indices, dtype=index),
        torch.as_tensor(a.data, dtype=torch.float32),
        a.shape,
    )


class _SymmetricSparseMM(torch.autograd.Function):
    """``a @ x`` whose backward is ``a @ grad`` (``aᵀ = a``): torch's own backward transposes and re-sorts
    ``a`` on every call, which made LightGCN's training step ~1.7x slower (ML-1M / Amazon Baby graphs, CPU)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a = a
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.a, grad)


def sparse_mm(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a @ x`` for a symmetric sparse float32 ``a`` (from ``to_torch``), in float32 even under autocast: sparse
    products have no reduced-precision kernels, and a bf16/fp16 ``x`` (e.g. a Linear output under autocast) fails
    in backward."""
    with torch.autocast(x.device.type, enabled=False):
        return _SymmetricSparseMM.apply(a, x.float())


def modality_graph(
    features: Mapping[str, tuple[np.ndarray, np.ndarray | None]], k: int, weights: Sequence[float] | None, who: str
) -> tuple[sp.csr_matrix | None, dict[str, float]]:
    """``Σ_m w_m · norm(kNN_m)`` over the modalities' ``(frozen features, availability mask)`` (weights normalised
    to sum 1); ``who`` names the caller in errors."""
    names = list(features)
    if not names:
        return None, {}
    w = [1.0] * len(names) if weights is None else [float(v) for v in weights]
    if len(w) != len(names) or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"{who}: modality_weights={list(w)} need one non-negative weight per modality {names}")
    w = [v / sum(w) for v in w]
    g = None
    for name, wm in zip(names, w):
        x, mask = features[name]
        s = sym_normalise(knn_graph(x, mask, k)) * wm
        g = s if g is None else g + s
    return g.tocsr(), dict(zip(names, w))


def bipartite_graph(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """0/1 symmetric ``(n_users + n_items)²`` adjacency of the user-item graph (users first, one edge per
    distinct (user, item) pair)."""
    n = n_users + n_items
    u, i = np.asarray(users, np.int64), np.asarray(items, np.int64) + n_users
    a = sp.csr_matrix((np.ones(2 * len(u), np.float32), (np.r_[u, i], np.r_[i, u])), shape=(n, n))
    a.data[:] = 1
    return a


def normalized_adjacency(train: Interactions) -> torch.Tensor:
    """LightGCN's ``D^{-1/2} A D^{-1/2}`` of the training user-item graph (users first), normalised in float64
    and stored as a float32 sparse tensor (FREEDOM normalises its per-epoch pruned graphs in float32: the two
    differ in the last bit of most entries, and each model keeps the precision its results were made with)."""
    csr = train.to_csr().tocoo()
    return to_torch(sym_normalise(bipartite_graph(csr.row, csr.col, train.n_users, train.n_items), np.float64))
