"""SVD: one SGD step by hand, several epochs against a per-rating reference loop, ML-100K 5-fold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.svd import SVD
from tests.helpers import surprise_reference as _reference
from tests.helpers.data import make_interactions


def test_one_sgd_step_by_hand():
    train = make_interactions([(0, 0), (1, 1)], 2, 2, [4.0, 2.0])  # μ = 3
    m = SVD(n_factors=1, n_epochs=1, lr_all=0.1, reg_all=0.5, seed=3).fit(train)
    rng = np.random.default_rng(3)
    p, q = rng.normal(0, 0.1, (2, 1))[:, 0], rng.normal(0, 0.1, (2, 1))[:, 0]
    err = 4.0 - (3.0 + p[0] * q[0])  # first rating, biases 0
    assert m.bu[0] == pytest.approx(0.1 * err)
    assert m.pu[0, 0] == pytest.approx(p[0] + 0.1 * (err * q[0] - 0.5 * p[0]))
    assert m.qi[0, 0] == pytest.approx(q[0] + 0.1 * (err * p[0] - 0.5 * q[0]))


def test_matches_the_reference_loop():
    rng = np.random.default_rng(0)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 6, 30), rng.integers(0, 5, 30))})
    rng.shuffle(pairs)  # interleaved users: the order must follow Surprise's (by first appearance)
    r = rng.integers(1, 6, len(pairs)).astype(float)
    train = make_interactions(pairs, 6, 5, r.tolist())
    m = SVD(n_factors=3, n_epochs=4, lr_all=0.05, reg_all=0.1, seed=1).fit(train)
    g = np.random.default_rng(1)
    pu, qi = g.normal(0, 0.1, (6, 3)), g.normal(0, 0.1, (5, 3))
    bu, bi, pu, qi = _reference.svd(train.users, train.items, r, pu, qi, 4, 0.05, 0.1, r.mean())
    np.testing.assert_allclose(m.bu, bu, atol=1e-12)
    np.testing.assert_allclose(m.qi, qi, atol=1e-12)
    want = r.mean() + bu[0] + bi[2] + pu[0] @ qi[2]
    assert m.predict(torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(np.clip(want, 1, 5))


def test_ml100k_5fold_matches_published(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, SVD)
    assert abs(rmse - 0.934) < 0.005 and abs(mae - 0.737) < 0.005, (rmse, mae)
