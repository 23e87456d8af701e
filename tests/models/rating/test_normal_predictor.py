"""NormalPredictor: draws follow N(μ, σ²) of the training ratings (σ the population std); ML-100K."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.normal_predictor import NormalPredictor
from tests.helpers.data import make_interactions


def test_draws_follow_the_fitted_normal_and_are_seeded_per_pair():
    train = make_interactions([(0, 0), (0, 1), (1, 0), (1, 1)], 2, 2, [1.0, 2.0, 4.0, 5.0])
    m = NormalPredictor(seed=0).fit(train)
    assert m.global_mean == 3.0 and m.sigma == pytest.approx(np.sqrt(10 / 4))
    users, items = torch.arange(20000) // 2, torch.arange(20000) % 2  # 20000 distinct pairs
    raw = m.estimate(users.numpy(), items.numpy())
    assert raw.mean() == pytest.approx(3.0, abs=0.05) and raw.std() == pytest.approx(np.sqrt(2.5), abs=0.05)
    assert abs(np.corrcoef(raw[0::2], raw[1::2])[0, 1]) < 0.05  # independent across pairs
    p = m.predict(users, items)
    assert p.min() == 1.0 and p.max() == 5.0  # clipped to the scale
    first = NormalPredictor(seed=0).fit(train).predict(users, items)
    torch.testing.assert_close(first, torch.from_numpy(np.clip(raw, 1, 5)))  # same seed, same draws
    torch.testing.assert_close(m.predict(users.flip(0), items.flip(0)), p.flip(0))  # a pair, one draw
    assert not np.allclose(NormalPredictor(seed=1).fit(train).estimate(users.numpy(), items.numpy()), raw)


def test_ml100k_5fold_matches_published(ml100k):
    from tests.helpers.surprise_folds import cv_metrics

    rmse, mae = cv_metrics(ml100k, NormalPredictor)
    assert abs(rmse - 1.518) < 0.005 and abs(mae - 1.219) < 0.005, (rmse, mae)
