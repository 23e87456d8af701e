"""The shared rating-model machinery: implicit data refused, Surprise's order, fallbacks and clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.base import grouped, surprise_order
from mmbench.models.rating.baseline_only import BaselineOnly
from mmbench.models.rating.knn import KNNBasic
from tests.helpers.data import make_interactions

MODELS = [
    "baseline_only.BaselineOnly",
    "normal_predictor.NormalPredictor",
    "knn.KNNBasic",
    "knn.KNNWithMeans",
    "knn.KNNWithZScore",
    "knn.KNNBaseline",
    "slope_one.SlopeOne",
    "co_clustering.CoClustering",
    "svd.SVD",
    "svdpp.SVDpp",
    "nmf.NMF",
    "pmf.PMF",
]


def _build(path: str):
    import importlib

    module, cls = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"mmbench.models.rating.{module}"), cls)()


@pytest.mark.parametrize("path", MODELS)
def test_implicit_only_data_is_refused_with_a_clear_message(path):
    implicit = make_interactions([(0, 0), (0, 1), (1, 1)], 2, 2)  # all ratings 1
    with pytest.raises(ValueError, match="implicit"):
        _build(path).fit(implicit)


@pytest.mark.parametrize("path", MODELS)
def test_every_model_predicts_within_the_scale_and_scores_full_rows(path):
    rng = np.random.default_rng(0)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 8, 40), rng.integers(0, 6, 40))})
    ratings = rng.integers(1, 6, len(pairs)).astype(float).tolist()
    train = make_interactions(pairs, 9, 7, ratings)  # user 8 and item 6 have no ratings
    m = _build(path).fit(train)
    users = torch.tensor([0, 1, 8, 8, 2])
    items = torch.tensor([0, 6, 1, 6, 3])
    p = m.predict(users, items)
    assert p.shape == (5,) and torch.isfinite(p).all()
    assert p.min() >= min(ratings) and p.max() <= max(ratings)
    s = m.score(torch.tensor([0, 3, 8]))
    assert s.shape == (3, 7) and torch.isfinite(s).all()
    if "Normal" not in path:  # NormalPredictor draws anew on every call
        torch.testing.assert_close(m.score(torch.tensor([3]), torch.tensor([2, 4])), s[1:2, [2, 4]])


def test_surprise_order_groups_users_by_first_appearance():
    # users 1 (events 0, 2), 0 (1, 4), 2 (3)
    assert surprise_order(np.array([1, 0, 1, 2, 0])).tolist() == [0, 2, 1, 4, 3]


def test_grouped_is_stable_csr():
    ptr, pos = grouped(np.array([2, 0, 2, 1, 0]), 4)
    assert ptr.tolist() == [0, 2, 3, 5, 5]
    assert pos.tolist() == [1, 4, 3, 0, 2]


def test_unknown_pairs_fall_back_and_predictions_are_clipped():
    train = make_interactions([(0, 0), (0, 1), (1, 0)], 3, 3, [5.0, 5.0, 4.0])
    m = BaselineOnly(n_epochs=1, reg_u=0.0, reg_i=0.0).fit(train)
    # μ = 14/3, b_i1 = 1/3, b_u0 = 1/4: r̂_01 = 5.25 > 5; predict clips, score does not
    est = m.estimate(np.array([0]), np.array([1]))[0]
    assert est == pytest.approx(14 / 3 + 1 / 4 + 1 / 3)
    assert m.predict(torch.tensor([0]), torch.tensor([1])).item() == 5.0
    assert m.score(torch.tensor([0]))[0, 1].item() == pytest.approx(est)
    knn = KNNBasic().fit(train)
    # unknown user 2 / item 2: Surprise's default prediction, the global mean
    torch.testing.assert_close(
        knn.predict(torch.tensor([2, 0]), torch.tensor([0, 2])), torch.tensor([14 / 3, 14 / 3], dtype=torch.float64)
    )
