"""Tiny hand-made data sets for tests."""

from __future__ import annotations

import numpy as np

from mmbench.data.interactions import Dataset, Interactions, build_dataset


def make_interactions(
    pairs: list[tuple[int, int]], n_users: int, n_items: int, ratings: list[float] | None = None
) -> Interactions:
    u = np.array([p[0] for p in pairs], np.int64)
    i = np.array([p[1] for p in pairs], np.int64)
    r = np.ones(len(pairs), np.float32) if ratings is None else np.array(ratings, np.float32)
    return Interactions(u, i, r, np.arange(len(pairs), dtype=np.int64), n_users, n_items)


def make_dataset(
    users: list,
    items: list,
    ratings: list[float] | None = None,
    timestamps: list[int] | None = None,
    name: str = "tiny",
) -> Dataset:
    n = len(users)
    return build_dataset(
        name,
        np.array(users),
        np.array(items),
        np.ones(n, np.float32) if ratings is None else np.array(ratings, np.float32),
        np.arange(n, dtype=np.int64) if timestamps is None else np.array(timestamps, np.int64),
    )


def two_communities(n=20, m=20):
    """Users 0..n/2-1 like items 0..m/2-1, the others the rest; each user saw all but 3 of their group."""
    rng = np.random.default_rng(0)
    train, held = [], []
    for u in range(n):
        group = range(0, m // 2) if u < n // 2 else range(m // 2, m)
        items = rng.permutation(list(group))
        train += [(u, int(i)) for i in items[3:]]
        held += [(u, int(i)) for i in items[:3]]
    return make_interactions(train, n, m), make_interactions(held, n, m)
