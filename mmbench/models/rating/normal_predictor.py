"""NormalPredictor: a random rating drawn from the normal distribution fitted to the training ratings."""

from __future__ import annotations

import numpy as np

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender


class NormalPredictor(RatingRecommender):
    """``r̂_ui ~ N(μ, σ²)`` with ``μ`` the training mean and ``σ`` its maximum-likelihood (population) standard
    deviation, as in Surprise; every call draws anew from a generator seeded with ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: Interactions) -> None:
        r = train.ratings.astype(np.float64)
        self.sigma = float(np.sqrt(np.mean((r - self.global_mean) ** 2)))
        self.rng = self.make_rng()

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.rng.normal(self.global_mean, self.sigma, len(users)), np.ones(len(users), bool)
