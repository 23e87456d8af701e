"""BaselineOnly: ``r̂_ui = μ + b_u + b_i`` (Koren 2010), biases fitted by ALS or SGD as in Surprise."""

from __future__ import annotations

import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender, compute_baselines


class BaselineOnly(RatingRecommender):
    """Global mean plus user and item biases; an unknown user (item) contributes ``b_u = 0`` (``b_i = 0``).

    ``method="als"``: ``n_epochs`` (None = 10), ``reg_u``, ``reg_i``; ``method="sgd"``: ``n_epochs``
    (None = 20), ``reg``, ``learning_rate`` — Surprise's ``bsl_options`` and their defaults.
    """

    def __init__(
        self,
        method: str = "als",
        n_epochs: int | None = None,
        reg_u: float = 15.0,
        reg_i: float = 10.0,
        reg: float = 0.02,
        learning_rate: float = 0.005,
    ) -> None:
        if method not in ("als", "sgd"):
            raise ValueError(f"model.method={method!r}: choose 'als' or 'sgd'")
        self.method, self.n_epochs = method, n_epochs
        self.reg_u, self.reg_i, self.reg, self.learning_rate = reg_u, reg_i, reg, learning_rate

    def _fit(self, train: Interactions) -> None:
        self.bu, self.bi = compute_baselines(
            train, self.global_mean, self.method, self.n_epochs, self.reg_u, self.reg_i, self.reg, self.learning_rate
        )

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.global_mean + self.bu[users] + self.bi[items], np.ones(len(users), bool)
