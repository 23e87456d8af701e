"""Preprocessing applied after loading and before splitting: de-duplication, rating threshold, k-core."""

from __future__ import annotations

import logging

import numpy as np

from mmbench.data.interactions import Dataset

log = logging.getLogger(__name__)

DEDUP_RULES = ("last", "first", "mean", "keep")


class Preprocess:
    """Turn a loaded dataset into the one that is split.

    Steps, in this order:

    1. ``dedup`` of repeated (user, item) pairs: ``last`` keeps the latest event by
       timestamp (ties: the later line of the file), ``first`` the earliest, ``mean``
       averages the ratings and keeps the latest timestamp, ``keep`` keeps them all.
    2. ``rating_threshold``: drop events rated below it; with ``binarize`` the kept
       ratings become 1 (implicit feedback). The catalogue is unchanged.
    3. k-core: repeatedly drop users with fewer than ``min_user_interactions`` and
       items with fewer than ``min_item_interactions`` events until both hold; the
       users and items removed leave the id space.

    Every step logs how many events it removed; nothing is dropped silently.
    """

    def __init__(
        self,
        dedup: str = "last",
        rating_threshold: float | None = None,
        binarize: bool = False,
        min_user_interactions: int = 0,
        min_item_interactions: int = 0,
    ) -> None:
        if dedup not in DEDUP_RULES:
            raise ValueError(f"preprocess.dedup={dedup!r}: choose one of {DEDUP_RULES}")
        self.dedup = dedup
        self.rating_threshold = rating_threshold
        self.binarize = binarize
        self.min_user_interactions = min_user_interactions
        self.min_item_interactions = min_item_interactions

    def __call__(self, ds: Dataset) -> Dataset:
        ds = self._dedup(ds)
        inter = ds.interactions
        if self.rating_threshold is not None:
            keep = inter.ratings >= self.rating_threshold
            log.info("rating_threshold=%s removed %d of %d events", self.rating_threshold, (~keep).sum(), len(keep))
            ds = ds.restrict(np.flatnonzero(keep), compact=False)
        if self.binarize:
            inter = ds.interactions
            ds.interactions = type(inter)(
                inter.users, inter.items, np.ones_like(inter.ratings), inter.timestamps, inter.n_users, inter.n_items
            )
        if self.min_user_interactions > 1 or self.min_item_interactions > 1:
            ds = self._kcore(ds)
        return ds

    def _dedup(self, ds: Dataset) -> Dataset:
        inter = ds.interactions
        if self.dedup == "keep" or len(inter) == 0:
            return ds
        key = inter.users * inter.n_items + inter.items
        sk = np.sort(key)
        if not (sk[1:] == sk[:-1]).any():  # no repeated pair: one sort instead of the lexsort below (25M events)
            return ds
        del sk
        # stable sort by (key, timestamp) keeps file order among ties
        order = np.lexsort((inter.timestamps, key))
        k = key[order]
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        n_dup = len(inter) - len(starts)
        if n_dup == 0:
            return ds
        ends = np.r_[starts[1:], len(k)] - 1
        rows = order[starts] if self.dedup == "first" else order[ends]
        log.info("dedup=%s merged %d repeated (user, item) events", self.dedup, n_dup)
        out = ds.restrict(np.sort(rows), compact=False)
        if self.dedup == "mean":
            sums = np.add.reduceat(inter.ratings[order].astype(np.float64), starts)
            mean = (sums / np.diff(np.r_[starts, len(k)]))[np.argsort(order[ends])]
            out.interactions.ratings[:] = mean.astype(np.float32)
        return out

    def _kcore(self, ds: Dataset) -> Dataset:
        inter = ds.interactions
        keep = np.ones(len(inter), bool)
        while True:
            uc = np.bincount(inter.users[keep], minlength=inter.n_users)
            ic = np.bincount(inter.items[keep], minlength=inter.n_items)
            new = (
                keep & (uc[inter.users] >= self.min_user_interactions) & (ic[inter.items] >= self.min_item_interactions)
            )
            if new.sum() == keep.sum():
                break
            keep = new
        log.info(
            "k-core (users>=%d, items>=%d) removed %d of %d events",
            self.min_user_interactions,
            self.min_item_interactions,
            (~keep).sum(),
            len(keep),
        )
        return ds.restrict(np.flatnonzero(keep))
