"""Item-based k-nearest-neighbours for top-N: cosine similarity with shrinkage, sparse and blockwise."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender


class CosineKNN(Recommender):
    """Shared by :class:`ItemKNN` and UserKNN: ``k`` neighbours by cosine similarity with ``shrink``, computed
    ``block_size`` rows at a time (:func:`cosine_topk`) on the binary training matrix."""

    def __init__(self, k: int = 50, shrink: float = 0.0, block_size: int = 2048) -> None:
        if k < 1:
            raise ValueError(f"model.k must be >= 1, got {k}")
        self.k, self.shrink, self.block_size = k, shrink, block_size
        self.X: sp.csr_matrix | None = None
        self.W: sp.csr_matrix | None = None

    @staticmethod
    def binary(train: Interactions) -> sp.csr_matrix:
        """Users x items matrix with a 1 for every training event."""
        X = train.to_csr()
        X.data[:] = 1.0
        return X


class ItemKNN(CosineKNN):
    """``score(u, j) = Σ_{i ∈ N_k(j)} sim(j, i) · x_ui`` with ``sim(j, i) = x_j·x_i / (|x_j||x_i| + shrink)``.

    ``x_i`` is item i's binary column of the training matrix; ``N_k(j)`` its ``k`` most
    similar other items. Similarities are computed ``block_size`` items at a time, so
    memory stays ``O(block_size x n_items)``.
    """

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        X = self.binary(train)
        self.W = cosine_topk(X.T.tocsr(), self.k, self.shrink, self.block_size)
        self.WT = self.W.T.tocsr().astype(np.float32)
        self.X = X
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        s = np.asarray((self.X[users.cpu().numpy()] @ self.WT).todense(), dtype=np.float32)
        out = torch.from_numpy(s)
        return out if items is None else out[:, items.cpu()]


def cosine_topk(rows: sp.csr_matrix, k: int, shrink: float, block_size: int) -> sp.csr_matrix:
    """Sparse ``n x n`` matrix keeping, for each row vector ``a``, its ``k`` most similar other rows ``b``
    by ``a·b / (|a||b| + shrink)`` (positive similarities only). Computed ``block_size`` rows at a time,
    so memory stays ``O(block_size x n)``; shared by :class:`ItemKNN` (item columns) and UserKNN (user rows).
    """
    n = rows.shape[0]
    cols_t = rows.T.tocsr()
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(1)).ravel())
    k = max(min(k, n - 1), 1)
    out_rows, out_cols, out_vals = [], [], []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        sim = (rows[start:stop] @ cols_t).toarray().astype(np.float64)
        sim /= norms[start:stop, None] * norms[None, :] + shrink + 1e-12
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (stop - start, 1))
        v = np.take_along_axis(sim, top, axis=1)
        keep = v > 0
        out_rows.append(np.repeat(np.arange(start, stop), top.shape[1])[keep.ravel()])
        out_cols.append(top[keep])
        out_vals.append(v[keep])
    return sp.csr_matrix((np.concatenate(out_vals), (np.concatenate(out_rows), np.concatenate(out_cols))), shape=(n, n))
