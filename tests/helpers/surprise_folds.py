"""Helper of the real-data tests: one fold of the Surprise protocol (5-fold KFoldSplit, seed 0) on ML-100K.

Published values are 5-fold means; the fold (seed 0, fold 0) is fixed, so a test's margin is checked once.
"""

from __future__ import annotations

import numpy as np
import torch

from mmbench.data.interactions import Dataset, Interactions
from mmbench.models.rating.base import RatingRecommender
from mmbench.splits.splitters import KFoldSplit

_CACHE: dict[tuple[int, int], tuple[Interactions, Interactions]] = {}


def _fold(ds: Dataset, fold: int) -> tuple[Interactions, Interactions]:
    key = (id(ds), fold)
    if key not in _CACHE:
        labels = KFoldSplit(5, fold, 0).assign(ds)
        _CACHE[key] = ds.interactions.subset(labels == 0), ds.interactions.subset(labels == 2)
    return _CACHE[key]


def fold_metrics(ds: Dataset, model: RatingRecommender, fold: int = 0) -> tuple[float, float]:
    """Test RMSE and MAE of ``model`` fitted on the training part of the fold."""
    train, test = _fold(ds, fold)
    p = model.fit(train).predict(torch.as_tensor(test.users), torch.as_tensor(test.items)).numpy()
    return float(np.sqrt(np.mean((p - test.ratings) ** 2))), float(np.mean(np.abs(p - test.ratings)))


def cv_metrics(ds: Dataset, make: type[RatingRecommender] | object, n_folds: int = 5) -> tuple[float, float]:
    """Mean test RMSE and MAE over the 5 folds, as Surprise's table reports them (``make()`` builds a model)."""
    out = [fold_metrics(ds, make(), f) for f in range(n_folds)]
    return float(np.mean([o[0] for o in out])), float(np.mean([o[1] for o in out]))
