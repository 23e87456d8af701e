"""Diagnostic for the BPR gap to MMRec (results/peers_mmrec): an mmbench run whose pairwise sampler draws negatives
only among the items that occur in training, as MMRec's ``TrainDataLoader`` does, instead of the whole catalogue.

    MMBENCH_DATA_DIR=../shared/data python scripts/peers/train_item_negatives.py experiment=mm_ml100k model=bpr seed=0

Takes mmbench's command-line overrides. Not a model option on purpose: an item without training events is in the
catalogue only because it occurs in validation or test, so never using it as a negative lifts exactly the items the
held-out parts contain.
"""

from __future__ import annotations

import runpy
import sys

import numpy as np

from mmbench.data.sampling import PairwiseSampler

_init = PairwiseSampler.__init__


def _init_train_items(self: PairwiseSampler, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
    _init(self, *args, **kwargs)
    self.train_items = np.unique(self.items)


def _negatives(self: PairwiseSampler, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    pool = self.train_items
    neg = pool[rng.integers(0, len(pool), len(users))]
    bad = np.flatnonzero(self._is_positive(users, neg))
    while len(bad):
        neg[bad] = pool[rng.integers(0, len(pool), len(bad))]
        bad = bad[self._is_positive(users[bad], neg[bad])]
    return neg


if __name__ == "__main__":
    PairwiseSampler.__init__, PairwiseSampler.negatives = _init_train_items, _negatives
    sys.argv = ["mmbench", *sys.argv[1:]]
    runpy.run_module("mmbench", run_name="__main__")
