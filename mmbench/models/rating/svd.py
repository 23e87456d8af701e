"""SVD: biased matrix factorisation trained by SGD (Funk 2006; Koren, Bell and Volinsky 2009), as in Surprise."""

from __future__ import annotations

import numba
import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender, surprise_order


@numba.njit(cache=True)
def _svd_sgd(
    users,
    items,
    ratings,
    order,
    bu,
    bi,
    pu,
    qi,
    global_mean,
    biased,
    n_epochs,
    lr_bu,
    lr_bi,
    lr_pu,
    lr_qi,
    reg_bu,
    reg_bi,
    reg_pu,
    reg_qi,
):  # noqa: ANN001
    n_factors = pu.shape[1]
    for _ in range(n_epochs):
        for t in order:
            u, i, r = users[t], items[t], ratings[t]
            dot = 0.0
            for f in range(n_factors):
                dot += qi[i, f] * pu[u, f]
            err = r - (global_mean + bu[u] + bi[i] + dot)
            if biased:
                bu[u] += lr_bu * (err - reg_bu * bu[u])
                bi[i] += lr_bi * (err - reg_bi * bi[i])
            for f in range(n_factors):
                puf = pu[u, f]
                qif = qi[i, f]
                pu[u, f] += lr_pu * (err * qif - reg_pu * puf)
                qi[i, f] += lr_qi * (err * puf - reg_qi * qif)


class SVD(RatingRecommender):
    """``r̂_ui = μ + b_u + b_i + q_iᵀ p_u`` (``biased=False``: ``q_iᵀ p_u`` alone, i.e. PMF).

    SGD on the squared error with L2 penalties, one pass per epoch over the training ratings in Surprise's
    order (by user, see :func:`~mmbench.models.rating.base.surprise_order`), biases at 0 and factors from
    ``N(init_mean, init_std_dev²)`` (``seed``). The updates are sequential (each reads the previous one),
    so the loop is compiled with numba. ``lr_all`` / ``reg_all`` set every rate / penalty that is not given
    on its own. An unknown user or item contributes no bias and no factors; unbiased: the global mean.
    """

    def __init__(
        self,
        n_factors: int = 100,
        n_epochs: int = 20,
        biased: bool = True,
        init_mean: float = 0.0,
        init_std_dev: float = 0.1,
        lr_all: float = 0.005,
        reg_all: float = 0.02,
        lr_bu: float | None = None,
        lr_bi: float | None = None,
        lr_pu: float | None = None,
        lr_qi: float | None = None,
        reg_bu: float | None = None,
        reg_bi: float | None = None,
        reg_pu: float | None = None,
        reg_qi: float | None = None,
        seed: int = 0,
    ) -> None:
        if n_factors < 1 or n_epochs < 0:
            raise ValueError(f"model.n_factors must be >= 1 and n_epochs >= 0, got {n_factors}, {n_epochs}")
        self.n_factors, self.n_epochs, self.biased = n_factors, n_epochs, biased
        self.init_mean, self.init_std_dev, self.seed = init_mean, init_std_dev, seed
        pick = lambda v, d: d if v is None else v  # noqa: E731
        self.lr = [pick(v, lr_all) for v in (lr_bu, lr_bi, lr_pu, lr_qi)]
        self.regs = [pick(v, reg_all) for v in (reg_bu, reg_bi, reg_pu, reg_qi)]

    def _fit(self, train: Interactions) -> None:
        rng = self.make_rng()
        self.pu = rng.normal(self.init_mean, self.init_std_dev, (train.n_users, self.n_factors))
        self.qi = rng.normal(self.init_mean, self.init_std_dev, (train.n_items, self.n_factors))
        self.bu, self.bi = np.zeros(train.n_users), np.zeros(train.n_items)
        mu = self.global_mean if self.biased else 0.0
        _svd_sgd(
            train.users,
            train.items,
            train.ratings.astype(np.float64),
            surprise_order(train.users),
            self.bu,
            self.bi,
            self.pu,
            self.qi,
            mu,
            self.biased,
            self.n_epochs,
            *self.lr,
            *self.regs,
        )

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ku, ki = self.known_user(users), self.known_item(items)
        both = ku & ki
        dot = np.einsum("nf,nf->n", self.pu[users], self.qi[items]) * both
        if not self.biased:
            return dot, both
        return self.global_mean + self.bu[users] * ku + self.bi[items] * ki + dot, np.ones(len(users), bool)
