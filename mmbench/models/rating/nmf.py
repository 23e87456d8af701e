"""NMF for rating prediction (Luo et al. 2014): non-negative factors by multiplicative updates, as in Surprise."""

from __future__ import annotations

import numba
import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender, surprise_order


@numba.njit(cache=True)
def _nmf_epoch(
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
    lr_bu,
    lr_bi,
    reg_bu,
    reg_bi,
    user_num,
    user_den,
    item_num,
    item_den,
):  # noqa: ANN001
    n_factors = pu.shape[1]
    for t in order:
        u, i, r = users[t], items[t], ratings[t]
        dot = 0.0
        for f in range(n_factors):
            dot += qi[i, f] * pu[u, f]
        est = global_mean + bu[u] + bi[i] + dot
        err = r - est
        if biased:
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        for f in range(n_factors):
            user_num[u, f] += qi[i, f] * r
            user_den[u, f] += qi[i, f] * est
            item_num[i, f] += pu[u, f] * r
            item_den[i, f] += pu[u, f] * est


def _multiplicative(x: np.ndarray, num: np.ndarray, den: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x * num / den`` where ``x != 0`` in the given rows; ``x`` elsewhere."""
    upd = (x != 0) & rows
    ratio = np.ones_like(x)
    np.divide(num, den, out=ratio, where=upd)
    return x * ratio


class NMF(RatingRecommender):
    """``r̂_ui = q_iᵀ p_u`` with ``p_u, q_i ≥ 0`` (``biased=True`` adds ``μ + b_u + b_i``).

    Each epoch accumulates ``Σ_i q_i r_ui`` and ``Σ_i q_i r̂_ui`` per user (and the item analogues) in one pass
    over the ratings in Surprise's order, then ``p_uf ← p_uf Σ q_if r_ui / (Σ q_if r̂_ui + |I_u| reg_pu p_uf)``
    and likewise ``q_if``. The pass is a numba kernel because biased NMF moves ``b_u, b_i`` by SGD inside it;
    the factor updates are vectorised. Factors start uniform on ``[init_low, init_high]`` (``seed``).
    Unbiased with an unknown user or item: the global mean. Defaults: Surprise's.
    """

    def __init__(
        self,
        n_factors: int = 15,
        n_epochs: int = 50,
        biased: bool = False,
        reg_pu: float = 0.06,
        reg_qi: float = 0.06,
        reg_bu: float = 0.02,
        reg_bi: float = 0.02,
        lr_bu: float = 0.005,
        lr_bi: float = 0.005,
        init_low: float = 0.0,
        init_high: float = 1.0,
        seed: int = 0,
    ) -> None:
        if init_low < 0:
            raise ValueError(f"model.init_low must be >= 0 (non-negative factors), got {init_low}")
        self.n_factors, self.n_epochs, self.biased = n_factors, n_epochs, biased
        self.reg_pu, self.reg_qi, self.reg_bu, self.reg_bi = reg_pu, reg_qi, reg_bu, reg_bi
        self.lr_bu, self.lr_bi, self.init_low, self.init_high, self.seed = lr_bu, lr_bi, init_low, init_high, seed

    def _fit(self, train: Interactions) -> None:
        rng = self.make_rng()
        nu, ni, f = train.n_users, train.n_items, self.n_factors
        self.pu = rng.uniform(self.init_low, self.init_high, (nu, f))
        self.qi = rng.uniform(self.init_low, self.init_high, (ni, f))
        self.bu, self.bi = np.zeros(nu), np.zeros(ni)
        mu = self.global_mean if self.biased else 0.0
        users, items, r = train.users, train.items, train.ratings.astype(np.float64)
        order = surprise_order(users)
        nu_r, ni_r = self.user_count[:, None], self.item_count[:, None]
        for _ in range(self.n_epochs):
            un, ud, inum, iden = np.zeros((nu, f)), np.zeros((nu, f)), np.zeros((ni, f)), np.zeros((ni, f))
            _nmf_epoch(
                users,
                items,
                r,
                order,
                self.bu,
                self.bi,
                self.pu,
                self.qi,
                mu,
                self.biased,
                self.lr_bu,
                self.lr_bi,
                self.reg_bu,
                self.reg_bi,
                un,
                ud,
                inum,
                iden,
            )
            # Surprise updates only factors of users / items with ratings, and only non-zero ones
            self.pu = _multiplicative(self.pu, un, ud + nu_r * self.reg_pu * self.pu, nu_r > 0)
            self.qi = _multiplicative(self.qi, inum, iden + ni_r * self.reg_qi * self.qi, ni_r > 0)

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ku, ki = self.known_user(users), self.known_item(items)
        both = ku & ki
        dot = np.einsum("nf,nf->n", self.pu[users], self.qi[items]) * both
        if not self.biased:
            return dot, both
        return self.global_mean + self.bu[users] * ku + self.bi[items] * ki + dot, np.ones(len(users), bool)
