"""Shared machinery of the rating-prediction models (Surprise's family): data checks, fallbacks, clipping, baselines.

The models follow the Surprise library's definitions (Hug 2020) so that its published ML-100K table can be
reproduced: a prediction that the model cannot make ("impossible": unknown user or item, too few neighbours)
falls back to the model's default (the global mean unless the model says otherwise), and every prediction
is clipped to the rating scale of the training data. ``score`` gives the same estimates without clipping
(clipping would tie every item predicted above the top of the scale), so the models also rank all items.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Self

import numba
import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Capabilities, Recommender


class RatingRecommender(Recommender):
    """A model of explicit ratings: ``predict(users, items)`` for RMSE / MAE, ``score`` for top-N ranking.

    Subclasses implement ``_fit`` and ``_estimate(users, items) -> (estimates, possible)``; where
    ``possible`` is false the prediction is ``_default(users, items)`` (the global mean).
    """

    capabilities = Capabilities(predicts_ratings=True)

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        if len(train) == 0:
            raise ValueError(f"{type(self).__name__}: the training set is empty")
        if train.is_implicit:
            raise ValueError(
                f"{type(self).__name__} predicts explicit ratings, but every training rating is 1 (implicit-only "
                "data, e.g. preprocess=implicit4 or binarize=true); use a dataset with ratings or a ranking model "
                "(pop, itemknn, bpr)"
            )
        r = train.ratings.astype(np.float64)
        self.global_mean = float(r.mean())
        self.rating_min, self.rating_max = float(r.min()), float(r.max())
        self.n_users, self.n_items = train.n_users, train.n_items
        self.user_count = np.bincount(train.users, minlength=train.n_users)
        self.item_count = np.bincount(train.items, minlength=train.n_items)
        self._fit(train)
        return self

    @abstractmethod
    def _fit(self, train: Interactions) -> None:
        """Learn the parameters (``fit`` has set the global mean, scale and counts)."""

    @abstractmethod
    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw estimates for the pairs and whether each was possible."""

    def make_rng(self) -> np.random.Generator:
        """The generator of the random initialisation, seeded by ``seed`` (a comparison script may substitute
        another library's draws to check that the training itself is the same)."""
        return np.random.default_rng(getattr(self, "seed", 0))

    def _default(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.global_mean)

    def known_user(self, users: np.ndarray) -> np.ndarray:
        return self.user_count[users] > 0

    def known_item(self, items: np.ndarray) -> np.ndarray:
        return self.item_count[items] > 0

    def estimate(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unclipped estimates with the impossible ones replaced by the default."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        est, ok = self._estimate(users, items)
        est = np.asarray(est, np.float64)
        if not ok.all():
            est = np.where(ok, est, self._default(users, items))
        return est

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Predicted ratings of the (user, item) pairs, clipped to the training rating scale."""
        est = self.estimate(users.cpu().numpy(), items.cpu().numpy())
        return torch.from_numpy(np.clip(est, self.rating_min, self.rating_max))

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Unclipped estimates for every item (or ``items``) of each user, for top-N ranking."""
        u = users.cpu().numpy().astype(np.int64)
        it = np.arange(self.n_items) if items is None else items.cpu().numpy().astype(np.int64)
        est = self.estimate(np.repeat(u, len(it)), np.tile(it, len(u)))
        return torch.from_numpy(est.reshape(len(u), len(it)).astype(np.float32))


def surprise_order(users: np.ndarray) -> np.ndarray:
    """The order in which Surprise's ``trainset.all_ratings()`` visits the training events.

    Users in order of first appearance in the training list, each user's ratings in list order. Surprise
    does not reshuffle between SGD epochs; its folds are shuffled once, so this order is already random.
    """
    first = np.full(int(users.max()) + 1, len(users), np.int64)
    np.minimum.at(first, users, np.arange(len(users)))
    return np.argsort(first[users], kind="stable")


def grouped(keys: np.ndarray, n: int, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CSR-style grouping of event positions by ``keys`` (stable in the given ``order``): ``indptr, positions``."""
    base = np.arange(len(keys)) if order is None else order
    pos = base[np.argsort(keys[base], kind="stable")]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return indptr, pos


@numba.njit(cache=True)
def _baseline_sgd(users, items, ratings, order, n_users, n_items, global_mean, n_epochs, reg, lr):  # noqa: ANN001
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    for _ in range(n_epochs):
        for t in order:
            u, i = users[t], items[t]
            err = ratings[t] - (global_mean + bu[u] + bi[i])
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
    return bu, bi


def compute_baselines(
    train: Interactions,
    global_mean: float,
    method: str = "als",
    n_epochs: int | None = None,
    reg_u: float = 15.0,
    reg_i: float = 10.0,
    reg: float = 0.02,
    learning_rate: float = 0.005,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item biases ``b_u, b_i`` of ``r ≈ μ + b_u + b_i`` (Koren 2010, section 2.1), as Surprise fits them.

    ``als``: ``n_epochs`` (default 10) alternating passes, items first,
    ``b_i = Σ_u (r_ui - μ - b_u) / (reg_i + |U_i|)`` then ``b_u = Σ_i (r_ui - μ - b_i) / (reg_u + |I_u|)``,
    each a vectorised bincount. ``sgd``: ``n_epochs`` (default 20) sequential passes in Surprise's order
    with ``b ← b + lr (e - reg b)``; compiled with numba because each update depends on the previous one.
    """
    u, i = train.users, train.items
    r = train.ratings.astype(np.float64)
    if method == "als":
        epochs = 10 if n_epochs is None else n_epochs
        nu = np.bincount(u, minlength=train.n_users)
        ni = np.bincount(i, minlength=train.n_items)
        bu = np.zeros(train.n_users)
        bi = np.zeros(train.n_items)
        di, du = (reg_i + ni).astype(np.float64), (reg_u + nu).astype(np.float64)
        for _ in range(epochs):  # users / items without ratings keep 0 (Surprise visits only known ones)
            bi = np.divide(
                np.bincount(i, r - global_mean - bu[u], minlength=train.n_items),
                di,
                where=ni > 0,
                out=np.zeros(train.n_items),
            )
            bu = np.divide(
                np.bincount(u, r - global_mean - bi[i], minlength=train.n_users),
                du,
                where=nu > 0,
                out=np.zeros(train.n_users),
            )
        return bu, bi
    if method == "sgd":
        epochs = 20 if n_epochs is None else n_epochs
        return _baseline_sgd(
            u, i, r, surprise_order(u), train.n_users, train.n_items, global_mean, epochs, reg, learning_rate
        )
    raise ValueError(f"baseline method={method!r}: choose 'als' or 'sgd'")


def rating_matrix(train: Interactions, user_based: bool = True) -> sp.csr_matrix:
    """``x`` by ``y`` float64 ratings (users by items when ``user_based``, else items by users)."""
    shape = (train.n_users, train.n_items) if user_based else (train.n_items, train.n_users)
    rows, cols = (train.users, train.items) if user_based else (train.items, train.users)
    return sp.csr_matrix((train.ratings.astype(np.float64), (rows, cols)), shape=shape)
