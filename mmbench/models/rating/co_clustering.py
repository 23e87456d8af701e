"""Co-clustering for rating prediction (George and Merugu 2005), as Surprise implements it."""

from __future__ import annotations

import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender


class CoClustering(RatingRecommender):
    """``r̂_ui = C̄_{c(u) c(i)} + (μ_u - C̄_{c(u)}) + (μ_i - C̄_{c(i)})``: co-cluster, user-cluster and item-cluster
    means plus the user's and item's deviations from their cluster means.

    Clusters start uniformly at random (``seed``); each of ``n_epochs`` computes the cluster means, then
    moves every user to the cluster with the least squared error over its ratings, then every item
    (with the users' new clusters, the epoch's means), as Surprise does. Each step is a vectorised bincount
    over the ratings per candidate cluster. Unknown user or item: the global mean.
    """

    def __init__(self, n_cltr_u: int = 3, n_cltr_i: int = 3, n_epochs: int = 20, seed: int = 0) -> None:
        if n_cltr_u < 1 or n_cltr_i < 1:
            raise ValueError(f"model.n_cltr_u and n_cltr_i must be >= 1, got {n_cltr_u}, {n_cltr_i}")
        self.n_cltr_u, self.n_cltr_i, self.n_epochs, self.seed = n_cltr_u, n_cltr_i, n_epochs, seed

    def _averages(self, cu: np.ndarray, ci: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u, i, r = self._u, self._i, self._r
        a, b = self.n_cltr_u, self.n_cltr_i

        def mean(keys: np.ndarray, n: int) -> np.ndarray:
            cnt = np.bincount(keys, minlength=n)
            out = np.full(n, self.global_mean)
            np.divide(np.bincount(keys, r, minlength=n), cnt, out=out, where=cnt > 0)
            return out

        return mean(cu[u], a), mean(ci[i], b), mean(cu[u] * b + ci[i], a * b).reshape(a, b)

    def _fit(self, train: Interactions) -> None:
        rng = self.make_rng()
        self._u, self._i, self._r = train.users, train.items, train.ratings.astype(np.float64)
        u, i, r = self._u, self._i, self._r
        nu, ni = train.n_users, train.n_items
        self.user_mean = np.bincount(u, r, minlength=nu) / np.maximum(self.user_count, 1)
        self.item_mean = np.bincount(i, r, minlength=ni) / np.maximum(self.item_count, 1)
        cu = rng.integers(self.n_cltr_u, size=nu)
        ci = rng.integers(self.n_cltr_i, size=ni)
        # r - est = (r - μ_u - μ_i) - (C̄_{uc,ic} - C̄_uc - C̄_ic): only the last term depends on the candidate
        base = r - self.user_mean[u] - self.item_mean[i]
        for _ in range(self.n_epochs):
            au, ai, aco = self._averages(cu, ci)
            err_u = np.stack(
                [
                    np.bincount(u, (base - (aco[c, ci[i]] - au[c] - ai[ci[i]])) ** 2, minlength=nu)
                    for c in range(self.n_cltr_u)
                ],
                axis=1,
            )
            cu = np.argmin(err_u, axis=1)
            err_i = np.stack(
                [
                    np.bincount(i, (base - (aco[cu[u], c] - au[cu[u]] - ai[c])) ** 2, minlength=ni)
                    for c in range(self.n_cltr_i)
                ],
                axis=1,
            )
            ci = np.argmin(err_i, axis=1)
        self.cltr_u, self.cltr_i = cu, ci
        self.avg_u, self.avg_i, self.avg_co = self._averages(cu, ci)
        del self._u, self._i, self._r

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = self.known_user(users) & self.known_item(items)
        cu, ci = self.cltr_u[users], self.cltr_i[items]
        est = self.avg_co[cu, ci] + self.user_mean[users] - self.avg_u[cu] + self.item_mean[items] - self.avg_i[ci]
        return est, ok
