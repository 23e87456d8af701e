"""NormalPredictor: a random rating drawn from the normal distribution fitted to the training ratings."""

from __future__ import annotations

import math

import numpy as np
import torch

from mmbench.data.hashing import mix64
from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender


class NormalPredictor(RatingRecommender):
    """``r̂_ui ~ N(μ, σ²)`` with ``μ`` the training mean and ``σ`` its maximum-likelihood (population) standard
    deviation, as in Surprise. The draw of a (user, item) pair is a function of ``seed``, user and item (Box-Muller
    over two hashed uniforms), independent across pairs: the same pair gets the same rating on every call and in
    any batch (Surprise draws anew at each call, which makes scores depend on call order)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, train: Interactions) -> None:
        r = train.ratings.astype(np.float64)
        self.sigma = float(np.sqrt(np.mean((r - self.global_mean) ** 2)))

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = (torch.as_tensor(users, dtype=torch.long) * self.n_items + torch.as_tensor(items, dtype=torch.long)) * 2
        key = key * 1_000_003 + self.seed * 7919
        u1 = ((mix64(key + 1) >> 10).double() + 0.5) / 2.0**53  # in (0, 1)
        u2 = ((mix64(key + 2) >> 10).double() + 0.5) / 2.0**53
        z = torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)
        return self.global_mean + self.sigma * z.numpy(), np.ones(len(users), bool)
