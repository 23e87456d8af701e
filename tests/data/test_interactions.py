import numpy as np
import pandas as pd
import pytest

from mmbench.data.interactions import UserContent
from tests.helpers.data import make_dataset


def test_build_dataset_maps_raw_ids_to_contiguous_sorted_ids():
    ds = make_dataset([30, 10, 30], ["b", "a", "c"])
    assert ds.user_ids.tolist() == [10, 30]
    assert ds.item_ids.tolist() == ["a", "b", "c"]
    assert ds.interactions.users.tolist() == [1, 0, 1]
    assert ds.interactions.items.tolist() == [1, 0, 2]


def test_side_table_items_without_events_stay_in_catalogue():
    from mmbench.data.interactions import build_dataset

    items = pd.DataFrame({"title": ["x", "y", "z"]}, index=[1, 2, 3])
    ds = build_dataset("t", np.array([5]), np.array([2]), np.ones(1), np.zeros(1), None, items)
    assert ds.n_items == 3
    assert ds.item_table["title"].tolist() == ["x", "y", "z"]
    assert ds.interactions.items.tolist() == [1]


def test_frame_round_trip_and_unknown_id_names_source_and_line():
    ds = make_dataset([1, 2, 2], [7, 8, 9], ratings=[5, 3, 1])
    df = ds.to_frame(ds.interactions)
    back = ds.from_frame(df, "f.tsv")
    assert back.fingerprint() == ds.interactions.fingerprint()
    df.loc[1, "item"] = 99
    with pytest.raises(ValueError, match=r"f.tsv: line 3: item id 99"):
        ds.from_frame(df, "f.tsv")


def test_restrict_compacts_ids_or_keeps_catalogue():
    ds = make_dataset([1, 2, 3], [7, 8, 9])
    compact = ds.restrict(np.array([0, 2]))
    assert compact.user_ids.tolist() == [1, 3] and compact.item_ids.tolist() == [7, 9]
    assert compact.interactions.users.tolist() == [0, 1]
    kept = ds.restrict(np.array([0, 2]), compact=False)
    assert kept.n_items == 3 and kept.interactions.items.tolist() == [0, 2]


def test_csr_and_fingerprint_change_with_data():
    ds = make_dataset([1, 1, 2], [1, 2, 2], ratings=[4, 2, 5])
    m = ds.interactions.to_csr("ratings").toarray()
    np.testing.assert_array_equal(m, [[4, 2], [0, 5]])
    other = make_dataset([1, 1, 2], [1, 2, 2], ratings=[4, 2, 4])
    assert ds.fingerprint() != other.fingerprint()


def test_restrict_keeps_user_content_aligned():
    ds = make_dataset([1, 2, 3], [7, 8, 9])
    ds.user_content = {"p": UserContent("p", np.array([[1.0], [2.0], [3.0]]), np.array([True, False, True]))}
    compact = ds.restrict(np.array([0, 2]))
    assert isinstance(compact.user_content["p"], UserContent)
    assert compact.user_content["p"].values.tolist() == [[1.0], [3.0]]
    assert compact.user_content["p"].mask.tolist() == [True, True]
    assert ds.restrict(np.array([0]), compact=False).user_content["p"] is ds.user_content["p"]
    table = UserContent("t", pd.DataFrame({"age": [5, 6, 7]}, index=[10, 11, 12]), np.ones(3, bool))
    assert table.take(np.array([2, 0])).values["age"].tolist() == [7, 5]
