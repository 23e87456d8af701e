import numpy as np
import pytest

from mmbench.data.preprocess import Preprocess
from tests.helpers.data import make_dataset


def dup_dataset():
    # user 1 rates item 10 three times (timestamps 5, 9, 7), item 11 once
    return make_dataset([1, 1, 1, 1], [10, 10, 11, 10], ratings=[1, 3, 4, 5], timestamps=[5, 9, 1, 7])


def pairs(ds):
    i = ds.interactions
    return sorted(
        zip(ds.user_ids[i.users].tolist(), ds.item_ids[i.items].tolist(), i.ratings.tolist(), i.timestamps.tolist())
    )


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("last", [(1, 10, 3.0, 9), (1, 11, 4.0, 1)]),
        ("first", [(1, 10, 1.0, 5), (1, 11, 4.0, 1)]),
        ("mean", [(1, 10, 3.0, 9), (1, 11, 4.0, 1)]),
        ("keep", [(1, 10, 1.0, 5), (1, 10, 3.0, 9), (1, 10, 5.0, 7), (1, 11, 4.0, 1)]),
    ],
)
def test_dedup_rules(rule, expected):
    assert pairs(Preprocess(dedup=rule)(dup_dataset())) == expected


def test_dedup_mean_averages():
    ds = make_dataset([1, 1, 2], [10, 10, 10], ratings=[2, 5, 4], timestamps=[1, 2, 3])
    out = Preprocess(dedup="mean")(ds)
    assert pairs(out) == [(1, 10, 3.5, 2), (2, 10, 4.0, 3)]


def test_threshold_binarizes_and_keeps_catalogue():
    ds = make_dataset([1, 1, 2], [10, 11, 12], ratings=[5, 2, 4])
    out = Preprocess(rating_threshold=4, binarize=True)(ds)
    assert pairs(out) == [(1, 10, 1.0, 0), (2, 12, 1.0, 2)]
    assert out.n_items == 3


def test_kcore_is_iterated_to_a_fixed_point():
    # u3 has 1 event -> removed; then item 12 drops to 1 event -> removed; then u2 drops to 1 -> removed.
    users = [1, 1, 1, 2, 2, 3, 4, 4]
    items = [10, 11, 12, 12, 13, 13, 10, 11]
    out = Preprocess(min_user_interactions=2, min_item_interactions=2)(make_dataset(users, items))
    assert sorted(out.user_ids.tolist()) == [1, 4]
    assert sorted(out.item_ids.tolist()) == [10, 11]
    inter = out.interactions
    assert np.bincount(inter.users).min() >= 2 and np.bincount(inter.items).min() >= 2


def test_unknown_dedup_rule_lists_choices():
    with pytest.raises(ValueError, match="last"):
        Preprocess(dedup="latest")
