"""SVD++: the block-wise implicit update equals Surprise's per-rating loop; ML-100K 5-fold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.svdpp import SVDpp
from tests.helpers import surprise_reference as _reference
from tests.helpers.data import make_interactions


def test_matches_the_per_rating_reference_loop():
    rng = np.random.default_rng(5)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 5, 40), rng.integers(0, 8, 40))})
    rng.shuffle(pairs)
    r = rng.integers(1, 6, len(pairs)).astype(float)
    train = make_interactions(pairs, 5, 8, r.tolist())
    m = SVDpp(n_factors=3, n_epochs=3, lr_all=0.05, reg_all=0.1, seed=6).fit(train)
    g = np.random.default_rng(6)
    pu, qi, yj = g.normal(0, 0.1, (5, 3)), g.normal(0, 0.1, (8, 3)), g.normal(0, 0.1, (8, 3))
    bu, bi, pu, qi, yj = _reference.svdpp(train.users, train.items, r, pu, qi, yj, 3, 0.05, 0.1, r.mean())
    np.testing.assert_allclose(m.yj, yj, atol=1e-12)
    np.testing.assert_allclose(m.pu, pu, atol=1e-12)
    np.testing.assert_allclose(m.bi, bi, atol=1e-12)
    u = int(train.users[0])
    items_u = train.items[train.users == u]
    want = r.mean() + bu[u] + bi[0] + qi[0] @ (pu[u] + yj[items_u].sum(0) / np.sqrt(len(items_u)))
    assert m.predict(torch.tensor([u]), torch.tensor([0])).item() == pytest.approx(np.clip(want, 1, 5))


def test_ml100k_5fold_matches_published(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, SVDpp)
    assert abs(rmse - 0.919) < 0.005 and abs(mae - 0.721) < 0.005, (rmse, mae)
