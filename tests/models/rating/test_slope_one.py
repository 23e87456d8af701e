"""Slope One on a hand-computed case; ML-100K 5-fold."""

from __future__ import annotations

import pytest
import torch

from mmbench.models.rating.slope_one import SlopeOne
from tests.helpers.ratings import MU, TRAIN


def test_slope_one_by_hand():
    m = SlopeOne().fit(TRAIN)
    # u0 rated i0, i1, i2 (mean 4). dev(i3, i0) = ((5-4) + (2-1)) / 2 = 1 (u1, u2); dev(i3, i1) = ((5-3) + (1-4)) / 2
    # = -0.5 (u1, u3); dev(i3, i2) = 2 - 2 = 0 (u2)
    assert m.predict(torch.tensor([0]), torch.tensor([3])).item() == pytest.approx(4 + (1 - 0.5 + 0) / 3)
    # u3 rated i1, i3 (mean 2.5): dev(i2, i1) = 4 - 3 = 1 (u0), dev(i2, i3) = 2 - 2 = 0 (u2)
    assert m.predict(torch.tensor([3]), torch.tensor([2])).item() == pytest.approx(3.0)
    assert m.predict(torch.tensor([0]), torch.tensor([4])).item() == pytest.approx(MU)  # unknown item


def test_ml100k_5fold_matches_published(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, SlopeOne)
    assert abs(rmse - 0.946) < 0.005 and abs(mae - 0.743) < 0.005, (rmse, mae)
