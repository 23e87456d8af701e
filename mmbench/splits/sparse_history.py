"""The sparse-history protocol: a base split in which a seeded share of users keeps only its first k training
events (``split=sparse_history``).

ML-100K and ML-1M have no user with fewer than 20 ratings, so whether content helps users with little history
cannot be measured on them as published. This split makes such users: it runs the base split (random by
default), picks a seeded ``share`` of the users that have training events and keeps only the first ``k`` of each
one's training events (by time, or at random), dropping the others from every part; validation and test events
stay exactly as in the base split, and every other user is unchanged. The truncated users are the group
``truncated`` of the split (:attr:`mmbench.splits.Split.groups`): runs log ``val|test/truncated/<metric>``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.data.interactions import Dataset
from mmbench.splits.base import Splitter


class SparseHistory(Splitter):
    """``base``'s split with a ``share`` of users (seeded by ``seed``) truncated to their first ``k`` training
    events, ordered by ``order``: ``time`` (timestamp, ties by event order) or ``random`` (seeded)."""

    def __init__(self, base: Splitter, share: float = 0.2, k: int = 3, order: str = "time", seed: int = 0) -> None:
        if not isinstance(base, Splitter):
            raise TypeError(f"split.base must be a splitter (a conf/split option), got {type(base).__name__}")
        if not 0 < share <= 1:
            raise ValueError(f"split.share={share}: must be in (0, 1]")
        if k < 1:
            raise ValueError(f"split.k={k}: must be at least 1")
        if order not in ("time", "random"):
            raise ValueError(f"split.order={order!r}: choose 'time' or 'random'")
        self.base, self.share, self.k, self.order, self.seed = base, share, k, order, seed
        self._truncated: np.ndarray | None = None

    def assign(self, ds: Dataset) -> np.ndarray:
        inter = ds.interactions
        labels = np.asarray(self.base.assign(ds)).copy()
        train = np.flatnonzero(labels == 0)
        users = np.unique(inter.users[train])
        rng = np.random.default_rng(self.seed)
        n_pick = int(np.floor(len(users) * self.share + 0.5))
        chosen = np.sort(rng.choice(users, n_pick, replace=False))
        rows = train[np.isin(inter.users[train], chosen)]
        keys = inter.timestamps[rows] if self.order == "time" else rng.random(len(rows))
        order = np.lexsort((rows, keys, inter.users[rows]))  # per user: by key, ties by event order
        sorted_rows = rows[order]
        u = inter.users[sorted_rows]
        starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
        pos = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
        labels[sorted_rows[pos >= self.k]] = -1
        self._truncated = chosen.astype(np.int64)
        return labels

    def groups(self, ds: Dataset) -> dict[str, np.ndarray]:
        if self._truncated is None:
            raise RuntimeError("SparseHistory.groups() is known only after assign()")
        return {"truncated": self._truncated}

    def fingerprint(self, ds: Dataset) -> str:
        self._base_fingerprint = self.base.fingerprint(ds)  # covers the base's own inputs (e.g. split files)
        return super().fingerprint(ds)

    def params(self) -> dict[str, Any]:
        return {
            "base": f"{type(self.base).__module__}.{type(self.base).__qualname__}",
            "base_params": self.base.params(),
            "base_fingerprint": getattr(self, "_base_fingerprint", None),
            "share": self.share,
            "k": self.k,
            "order": self.order,
            "seed": self.seed,
        }
