"""NMF: multiplicative updates against a per-rating reference; factors stay non-negative; ML-100K 5-fold."""

from __future__ import annotations

import numpy as np
import pytest

from mmbench.models.rating.nmf import NMF
from tests.helpers import surprise_reference as _reference
from tests.helpers.data import make_interactions


def test_matches_the_reference_and_stays_non_negative():
    rng = np.random.default_rng(7)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 6, 30), rng.integers(0, 5, 30))})
    r = rng.integers(1, 6, len(pairs)).astype(float)
    train = make_interactions(pairs, 6, 5, r.tolist())
    m = NMF(n_factors=2, n_epochs=5, reg_pu=0.1, reg_qi=0.2, seed=8).fit(train)
    g = np.random.default_rng(8)
    pu, qi = _reference.nmf(train.users, train.items, r, g.uniform(0, 1, (6, 2)), g.uniform(0, 1, (5, 2)), 5, 0.1, 0.2)
    np.testing.assert_allclose(m.pu, pu, atol=1e-12)
    np.testing.assert_allclose(m.qi, qi, atol=1e-12)
    assert (m.pu >= 0).all() and (m.qi >= 0).all()
    with pytest.raises(ValueError, match="init_low"):
        NMF(init_low=-1.0)


def test_ml100k_5fold_matches_published(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, NMF)
    assert abs(rmse - 0.963) < 0.005 and abs(mae - 0.758) < 0.005, (rmse, mae)
