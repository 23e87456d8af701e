"""``eval.candidates=target``: only the evaluated part's items are ranked (cold-item protocol)."""

import numpy as np
import pytest

from mmbench.evaluation.evaluator import Evaluator
from tests.helpers.data import make_interactions
from tests.helpers.models import SCORES, Fixed


def test_target_candidates_rank_only_the_target_items():
    train = make_interactions([(0, 0), (1, 1)], 3, 5)
    test = make_interactions([(0, 3), (1, 4), (2, 3)], 3, 5)  # held-out items 3 and 4
    ev = Evaluator(ks=[1, 2], metrics=["hit"], progress=False, candidates="target")
    r = ev.evaluate(Fixed(SCORES), test, [train], keep_topk=True)
    # user 0 scores 3 > ... among {3, 4}: item 3 (2) beats 4 (1); user 1: 4 (5) beats 3 (4); user 2 like user 0
    np.testing.assert_array_equal(r.topk_items, [[3, 4], [4, 3], [3, 4]])
    np.testing.assert_array_equal(r.per_user["hit@1"], [1, 1, 1])
    full = Evaluator(ks=[1, 2], metrics=["hit"], progress=False).evaluate(Fixed(SCORES), test, [train])
    np.testing.assert_array_equal(full.per_user["hit@1"], [0, 1, 0])  # items 1-2 outrank item 3 in full ranking


def test_bad_candidates_value():
    with pytest.raises(ValueError, match="eval.candidates='some'"):
        Evaluator(candidates="some")


def test_full_ranking_metrics_respect_the_candidates():
    train = make_interactions([(0, 0)], 3, 5)
    test = make_interactions([(0, 3), (1, 4)], 3, 5)  # candidates {3, 4}
    target = Evaluator(ks=[1], metrics=["hit", "auc"], progress=False, candidates="target")
    # user 0: relevant item 3 (score 2) against candidate 4 (score 1): AUC 1
    assert target.evaluate(Fixed(SCORES), test, [train]).per_user["auc"][0] == 1.0
    # over the whole catalogue it beats only item 4 of the non-excluded 1, 2, 4: AUC 1/3
    full = Evaluator(ks=[1], metrics=["hit", "auc"], progress=False)
    assert full.evaluate(Fixed(SCORES), test, [train]).per_user["auc"][0] == pytest.approx(1 / 3)
