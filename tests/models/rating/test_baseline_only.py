"""BaselineOnly biases on a 3x3 matrix, computed by hand for ALS and SGD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.baseline_only import BaselineOnly
from tests.helpers.data import make_interactions

# u0: i0=5 i1=3 | u1: i0=4 i2=1 | u2: i1=2 i2=3      μ = 18/6 = 3
TRAIN = make_interactions([(0, 0), (0, 1), (1, 0), (1, 2), (2, 1), (2, 2)], 3, 3, [5, 3, 4, 1, 2, 3])


def test_als_one_epoch_by_hand():
    m = BaselineOnly("als", n_epochs=1, reg_u=1.0, reg_i=1.0).fit(TRAIN)
    # items first: b_i0 = (2 + 1) / 3, b_i1 = (0 - 1) / 3, b_i2 = (-2 + 0) / 3
    np.testing.assert_allclose(m.bi, [1.0, -1 / 3, -2 / 3])
    # then users with the new b_i: b_u0 = ((5-3-1) + (3-3+1/3)) / 3 ...
    np.testing.assert_allclose(m.bu, [4 / 9, -4 / 9, 0.0], atol=1e-12)
    assert m.predict(torch.tensor([0]), torch.tensor([2])).item() == pytest.approx(3 + 4 / 9 - 2 / 3)


def test_sgd_one_epoch_by_hand():
    m = BaselineOnly("sgd", n_epochs=1, reg=0.0, learning_rate=0.1).fit(TRAIN)
    # sequential updates in Surprise's order (by user, then list order), e = r - (μ + b_u + b_i)
    np.testing.assert_allclose(m.bu, [0.18, -0.128, -0.0674], atol=1e-12)
    np.testing.assert_allclose(m.bi, [0.28, -0.118, -0.1774], atol=1e-12)


def test_defaults_and_bad_method():
    m = BaselineOnly().fit(TRAIN)
    assert m.method == "als" and m.reg_u == 15.0 and m.reg_i == 10.0
    with pytest.raises(ValueError, match="als"):
        BaselineOnly("newton")


def test_ml100k_5fold_matches_published_baseline(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, BaselineOnly)
    assert abs(rmse - 0.944) < 0.005 and abs(mae - 0.748) < 0.005
