"""A seeded synthetic dataset with planted latent factors and item content built from them.

Users and items get latent factors; interactions are drawn from a softmax over
user-item affinities; each item's image and text are deterministic functions of
its factors (plus noise), so a content-aware model can rank items it never saw
in training, which a pure CF model cannot. Likewise each user's ``profile`` (a user
modality) is their factors plus noise, so user features can serve users with no history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, UserContent, build_dataset


class Synthetic(DatasetLoader):
    """``n_users`` x ``n_items`` with about ``interactions_per_user`` events per user, ratings 1-5."""

    name = "synthetic"

    def __init__(
        self,
        n_users: int = 300,
        n_items: int = 400,
        n_factors: int = 8,
        interactions_per_user: int = 20,
        temperature: float = 0.5,
        image_size: int = 16,
        text_words: int = 6,
        missing_image: float = 0.1,
        missing_text: float = 0.0,
        profile_noise: float = 0.5,
        missing_profile: float = 0.0,
        seed: int = 0,
    ) -> None:
        if n_users < 1 or n_items < 2 or interactions_per_user < 1 or interactions_per_user >= n_items:
            raise ValueError(
                f"synthetic: need n_users>=1, n_items>=2 and 1<=interactions_per_user<n_items, got "
                f"{n_users}, {n_items}, {interactions_per_user}"
            )
        self.n_users, self.n_items, self.n_factors = n_users, n_items, n_factors
        self.interactions_per_user, self.temperature = interactions_per_user, temperature
        self.image_size, self.text_words = image_size, text_words
        self.missing_image, self.missing_text, self.seed = missing_image, missing_text, seed
        self.profile_noise, self.missing_profile = profile_noise, missing_profile

    def read(self) -> Dataset:
        rng = np.random.default_rng(self.seed)
        d = self.n_factors
        U = rng.normal(size=(self.n_users, d)) / np.sqrt(d)
        V = rng.normal(size=(self.n_items, d))
        logits = (U @ V.T) / self.temperature
        # per-user counts around the mean (at least 3), sampled without replacement via Gumbel top-k
        counts = np.clip(rng.poisson(self.interactions_per_user, self.n_users), 3, self.n_items - 1)
        keys = logits + rng.gumbel(size=logits.shape)
        order = np.argsort(-keys, axis=1)
        take = np.arange(self.n_items)[None, :] < counts[:, None]
        users = np.broadcast_to(np.arange(self.n_users)[:, None], order.shape)[take]
        items = order[take]
        aff = logits[users, items] + rng.normal(scale=0.5, size=len(users))
        ratings = 1 + np.searchsorted(np.quantile(aff, [0.1, 0.3, 0.6, 0.85]), aff)
        timestamps = rng.integers(1_000_000_000, 1_100_000_000, len(users))

        ds = build_dataset(
            self.name,
            users,
            items,
            ratings.astype(np.float32),
            timestamps,
            pd.DataFrame(index=pd.RangeIndex(self.n_users)),
            self._item_table(V),
        )
        ds.content = {
            "image": ItemContent("image", self._images(V, rng), rng.random(self.n_items) >= self.missing_image),
            "text": ItemContent("text", self._texts(V, rng), rng.random(self.n_items) >= self.missing_text),
        }
        ds.user_content = {"profile": self._profile(U)}
        return ds

    def _profile(self, U: np.ndarray) -> UserContent:
        """float32 ``(n_users, n_factors)``: the factors scaled to unit variance plus Gaussian noise of std
        ``profile_noise``; a ``missing_profile`` share of users has none (zero row, masked). Drawn from its own
        generator, so the interactions and item content do not depend on these settings."""
        rng = np.random.default_rng(self.seed + 2)
        x = U * np.sqrt(U.shape[1]) + rng.normal(scale=self.profile_noise, size=U.shape)
        mask = rng.random(len(U)) >= self.missing_profile
        return UserContent("profile", np.where(mask[:, None], x, 0).astype(np.float32), mask)

    def _item_table(self, V: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"title": [f"item {i}" for i in range(len(V))], "genre": np.argmax(V, axis=1)})

    def _images(self, V: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 images (n_items, 3, S, S): a fixed random projection of the factors, plus noise."""
        S = self.image_size
        W = np.random.default_rng(self.seed + 1).normal(size=(V.shape[1], 3 * S * S)) / np.sqrt(V.shape[1])
        x = V @ W + rng.normal(scale=0.3, size=(len(V), 3 * S * S))
        return (255 / (1 + np.exp(-x))).astype(np.uint8).reshape(len(V), 3, S, S)

    def _texts(self, V: np.ndarray, rng: np.random.Generator) -> list[str]:
        """Words ``f<k>pos``/``f<k>neg`` for the item's strongest factors, then a filler word."""
        top = np.argsort(-np.abs(V), axis=1)[:, : self.text_words]
        sign = np.where(np.take_along_axis(V, top, axis=1) > 0, "pos", "neg")
        filler = rng.integers(0, 50, len(V))
        return [" ".join(f"f{k}{s}" for k, s in zip(t, sg)) + f" w{f}" for t, sg, f in zip(top, sign, filler)]
