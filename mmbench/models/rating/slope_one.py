"""Slope One (Lemire and Maclachlan 2005), the unweighted variant that Surprise implements."""

from __future__ import annotations

import numba
import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender, rating_matrix


@numba.njit(cache=True)
def _slope_one_kernel(users, items, u_ptr, u_items, dev, has, user_mean):  # noqa: ANN001
    est = np.empty(len(users))
    for p in range(len(users)):
        u, i = users[p], items[p]
        total = 0.0
        n = 0
        for t in range(u_ptr[u], u_ptr[u + 1]):
            j = u_items[t]
            if has[i, j]:
                total += dev[i, j]
                n += 1
        est[p] = user_mean[u] + (total / n if n else 0.0)
    return est


class SlopeOne(RatingRecommender):
    """``r̂_ui = μ_u + (1 / |R_i(u)|) Σ_{j ∈ R_i(u)} dev(i, j)``, ``R_i(u)`` the items ``u`` rated that share a rater
    with ``i``, ``dev(i, j)`` the mean of ``r_vi - r_vj`` over their common raters.

    ``dev`` is one sparse product (``Rᵀ M - Mᵀ R`` over the co-rating count ``Mᵀ M``); the per-pair average over
    the user's items runs in a numba kernel (a ragged sum per pair, no Python per pair). Unknown user or item:
    the global mean.
    """

    def __init__(self) -> None:
        pass

    def _fit(self, train: Interactions) -> None:
        R = rating_matrix(train, user_based=True)
        M = R.copy()
        M.data[:] = 1.0
        RT, MT = R.T.tocsr(), M.T.tocsr()
        freq = (MT @ M).toarray()
        diff = (RT @ M).toarray() - (MT @ R).toarray()
        self.has = freq > 0
        self.dev = np.zeros_like(diff)
        np.divide(diff, freq, out=self.dev, where=self.has)
        n = np.diff(R.indptr)
        self.user_mean = np.asarray(R.sum(1)).ravel() / np.maximum(n, 1)
        self.u_ptr, self.u_items = R.indptr.astype(np.int64), R.indices.astype(np.int64)

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = self.known_user(users) & self.known_item(items)
        est = np.zeros(len(users))
        if ok.any():
            est[ok] = _slope_one_kernel(
                users[ok], items[ok], self.u_ptr, self.u_items, self.dev, self.has, self.user_mean
            )
        return est, ok
