import numpy as np
import pandas as pd
import pytest

from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator
from mmbench.splits import load_or_create
from mmbench.splits.splitters import (
    ColdItemSplit,
    ColdUserSplit,
    LeaveLastOut,
    ML100KFold,
    PredefinedColumn,
    PredefinedFiles,
    RandomSplit,
    TemporalSplit,
)
from tests.helpers.data import make_dataset
from tests.helpers.models import Fixed


@pytest.fixture(scope="module")
def synth():
    return Synthetic(n_users=60, n_items=90, interactions_per_user=20, seed=1).read()


def keys(inter):
    return set(zip(inter.users.tolist(), inter.items.tolist(), inter.timestamps.tolist()))


def assert_partition(ds, sp):
    parts = [keys(sp.train), keys(sp.val), keys(sp.test)]
    assert sum(len(p) for p in parts) == len(ds.interactions)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_random_split_per_user_ratios(synth, tmp_path):
    sp = load_or_create(synth, RandomSplit(0.1, 0.2, seed=0), tmp_path)
    assert_partition(synth, sp)
    total = np.bincount(synth.interactions.users, minlength=synth.n_users)
    test = np.bincount(sp.test.users, minlength=synth.n_users)
    val = np.bincount(sp.val.users, minlength=synth.n_users)
    np.testing.assert_array_equal(test, np.minimum(np.floor(total * 0.2 + 0.5), total - 1))
    np.testing.assert_array_equal(val, np.floor(total * 0.1 + 0.5))
    assert np.bincount(sp.train.users, minlength=synth.n_users).min() >= 1


def test_small_user_keeps_one_training_event(tmp_path):
    ds = make_dataset([1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], list(range(11)))
    sp = load_or_create(ds, RandomSplit(0.4, 0.4), tmp_path)
    assert 0 in sp.train.users.tolist()  # user 1's only event stays in training


def test_temporal_split_cuts_by_time(synth, tmp_path):
    sp = load_or_create(synth, TemporalSplit(0.1, 0.1), tmp_path)
    assert_partition(synth, sp)
    assert sp.train.timestamps.max() <= sp.val.timestamps.min()
    assert sp.val.timestamps.max() <= sp.test.timestamps.min()
    assert len(sp.test) == round(0.1 * len(synth.interactions))


def test_leave_last_out_takes_latest_per_user(tmp_path):
    ds = make_dataset([1, 1, 1, 1, 2, 2], [1, 2, 3, 4, 1, 2], timestamps=[4, 1, 3, 2, 1, 2])
    sp = load_or_create(ds, LeaveLastOut(1, 1), tmp_path)
    assert sorted(zip(sp.test.users.tolist(), sp.test.items.tolist())) == [(0, 0)]  # user 1's latest is item 1
    assert sorted(zip(sp.val.users.tolist(), sp.val.items.tolist())) == [(0, 2)]
    assert len(sp.train) == 4  # user 2 has only two events: both stay in training


def test_cold_items_never_in_training(synth, tmp_path):
    sp = load_or_create(synth, ColdItemSplit(0.1, 0.2, seed=0), tmp_path)
    assert_partition(synth, sp)
    train_items = set(sp.train.items.tolist())
    assert not train_items & set(sp.test.items.tolist())
    assert not train_items & set(sp.val.items.tolist())
    assert not set(sp.val.items.tolist()) & set(sp.test.items.tolist())
    n_seen = len(np.unique(synth.interactions.items))
    assert len(np.unique(sp.test.items)) == round(0.2 * n_seen)


def test_cold_users_never_in_training_and_ranked_over_the_whole_catalogue(synth, tmp_path):
    sp = load_or_create(synth, ColdUserSplit(0.1, 0.2, seed=0), tmp_path)
    assert_partition(synth, sp)
    train_u, val_u, test_u = (set(p.users.tolist()) for p in (sp.train, sp.val, sp.test))
    assert not train_u & test_u and not train_u & val_u and not val_u & test_u
    assert (len(test_u), len(val_u)) == (round(0.2 * 60), round(0.1 * 60))
    # every event of a held-out user is in its part
    counts = np.bincount(synth.interactions.users, minlength=60)
    assert all(np.sum(sp.test.users == u) == counts[u] for u in test_u)
    assert load_or_create(synth, ColdItemSplit(0.1, 0.2, seed=0), tmp_path).fingerprint != sp.fingerprint
    # test ranking excludes train + val, which hold nothing of a held-out user: with scores = item id, each
    # test user's top-10 is the 10 highest item ids of the whole catalogue
    ev = Evaluator(ks=[10], metrics=["hit"], progress=False)
    scores = np.tile(np.arange(synth.n_items, dtype=np.float32), (synth.n_users, 1))
    res = ev.evaluate(Fixed(scores), sp.test, [sp.train, sp.val], keep_topk=True)
    assert set(res.users.tolist()) == test_u
    assert (res.topk_items == np.arange(synth.n_items - 1, synth.n_items - 11, -1)).all()


def test_split_is_saved_reused_and_fingerprinted(synth, tmp_path):
    a = load_or_create(synth, RandomSplit(seed=0), tmp_path)
    assert (a.directory / "train.tsv").is_file() and (a.directory / "split.json").is_file()
    header = (a.directory / "test.tsv").read_text().splitlines()[0]
    assert header == "user\titem\trating\ttimestamp"
    b = load_or_create(synth, RandomSplit(seed=0), tmp_path)
    assert b.fingerprint == a.fingerprint and keys(b.test) == keys(a.test)
    assert load_or_create(synth, RandomSplit(seed=1), tmp_path).fingerprint != a.fingerprint
    assert load_or_create(synth, RandomSplit(0.2, 0.1), tmp_path).fingerprint != a.fingerprint
    other_data = Synthetic(n_users=60, n_items=90, interactions_per_user=20, seed=2).read()
    assert RandomSplit(seed=0).fingerprint(other_data) != a.fingerprint


def test_saved_split_is_read_back_not_recomputed(synth, tmp_path):
    a = load_or_create(synth, RandomSplit(seed=0), tmp_path)
    lines = (a.directory / "test.tsv").read_text().splitlines()
    (a.directory / "test.tsv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(RuntimeError, match="split.json says"):
        load_or_create(synth, RandomSplit(seed=0), tmp_path)


def test_official_ml100k_fold_matches_files(ml100k, tmp_path, data_dir):
    sp = load_or_create(ml100k, ML100KFold("u1", val_ratio=0.1), tmp_path)
    assert len(sp.test) == 20_000 and len(sp.train) + len(sp.val) == 80_000
    test = pd.read_csv(data_dir / "movielens/ml-100k/u1.test", sep="\t", names=["u", "i", "r", "t"])
    got = set(zip(ml100k.user_ids[sp.test.users].tolist(), ml100k.item_ids[sp.test.items].tolist()))
    assert got == set(zip(test.u.tolist(), test.i.tolist()))
    ua = load_or_create(ml100k, ML100KFold("ua", val_ratio=0.0), tmp_path)
    assert len(ua.test) == 9430 and np.bincount(ua.test.users).tolist() == [10] * 943
    with pytest.raises(ValueError, match="u1"):
        ML100KFold("u9")


def test_predefined_files_and_column(tmp_path):
    ds = make_dataset([1, 1, 2, 2, 3], [1, 2, 1, 3, 2])
    (tmp_path / "tr.tsv").write_text("1\t1\n2\t1\n3\t2\n")
    (tmp_path / "va.tsv").write_text("1\t2\n")
    (tmp_path / "te.tsv").write_text("2\t3\n")
    sp = load_or_create(ds, PredefinedFiles("tr.tsv", "te.tsv", "va.tsv", base_dir=str(tmp_path)), tmp_path / "s")
    assert (len(sp.train), len(sp.val), len(sp.test)) == (3, 1, 1)
    col = tmp_path / "d.inter"
    col.write_text("userID\titemID\tx_label\n1\t1\t0\n1\t2\t1\n2\t1\t0\n2\t3\t2\n3\t2\t0\n")
    sp2 = load_or_create(ds, PredefinedColumn(str(col)), tmp_path / "s")
    assert keys(sp2.test) == keys(sp.test) and keys(sp2.val) == keys(sp.val)
    col.write_text("userID\titemID\tx_label\n1\t1\t0\n1\t2\t7\n")
    with pytest.raises(ValueError, match=r"d.inter: line 3: x_label=7"):
        PredefinedColumn(str(col)).assign(ds)


def test_bad_ratios_are_rejected():
    with pytest.raises(ValueError, match="val=0.6, test=0.5"):
        RandomSplit(0.6, 0.5)


def test_kfold_partitions_every_event_once_and_is_seeded():
    from mmbench.splits.splitters import KFoldSplit

    n = 103
    ds = make_dataset(list(np.arange(n) % 7), list(np.arange(n) % 11), list((np.arange(n) % 5 + 1).astype(float)))
    tests = []
    for f in range(5):
        labels = KFoldSplit(5, f, seed=3).assign(ds)
        assert set(np.unique(labels)) == {0, 2}  # val_ratio 0: no validation part
        tests.append(np.flatnonzero(labels == 2))
    assert [len(t) for t in tests] == [21, 21, 21, 20, 20]  # the first n % 5 folds one longer
    assert sorted(np.concatenate(tests).tolist()) == list(range(n))
    np.testing.assert_array_equal(KFoldSplit(5, 2, seed=3).assign(ds), KFoldSplit(5, 2, seed=3).assign(ds))
    assert not np.array_equal(KFoldSplit(5, 2, seed=4).assign(ds), KFoldSplit(5, 2, seed=3).assign(ds))
    # the fold's test part is the seeded permutation's third slice of 21
    perm = np.random.default_rng(3).permutation(n)
    assert sorted(tests[2].tolist()) == sorted(perm[42:63].tolist())


def test_kfold_val_ratio_and_bad_arguments(synth, tmp_path):
    from mmbench.splits.splitters import KFoldSplit

    labels = KFoldSplit(4, 1, seed=0, val_ratio=0.25).assign(synth)
    assert (labels == 2).mean() == pytest.approx(0.25, abs=0.01)
    assert 0.15 < (labels == 1).mean() < 0.22  # a quarter of each user's training events
    with pytest.raises(ValueError, match="fold=5"):
        KFoldSplit(5, 5)
    with pytest.raises(ValueError, match="n_folds"):
        KFoldSplit(1, 0)


def test_kfold_empty_validation_is_saved_and_read_back(synth, tmp_path):
    from mmbench.splits.splitters import KFoldSplit

    first = load_or_create(synth, KFoldSplit(5, 0), tmp_path)
    again = load_or_create(synth, KFoldSplit(5, 0), tmp_path)
    assert len(first.val) == len(again.val) == 0
    assert len(again.train) + len(again.test) == len(synth.interactions)
    assert_partition(synth, again)


def test_leave_last_breaks_timestamp_ties_by_file_order(tmp_path):
    # user 0's lines: item 13 @5, item 11 @5, item 12 @5, item 10 @1 -> by (timestamp, line): 10, 13, 11, 12
    ds = make_dataset([0, 0, 0, 0, 1, 1, 1], [13, 11, 12, 10, 10, 11, 12], timestamps=[5, 5, 5, 1, 1, 2, 3])
    sp = load_or_create(ds, LeaveLastOut(1, 1), tmp_path)
    raw = {p: sorted(zip(ds.user_ids[x.users].tolist(), ds.item_ids[x.items].tolist())) for p, x in sp_parts(sp)}
    assert raw["test"] == [(0, 12), (1, 12)]
    assert raw["val"] == [(0, 11), (1, 11)]
    assert raw["train"] == [(0, 10), (0, 13), (1, 10)]


def sp_parts(sp):
    return [("train", sp.train), ("val", sp.val), ("test", sp.test)]


def test_a_pair_in_two_parts_is_refused_unless_allowed(tmp_path):
    # user 7 rated item 3 twice (dedup=keep): leave-last puts one event in test, the other in training
    ds = make_dataset([7, 7, 7, 7, 8, 8, 8], [3, 4, 5, 3, 3, 4, 5], timestamps=[1, 2, 3, 4, 1, 2, 3])
    with pytest.raises(ValueError, match=r"1 \(user, item\) pairs are in both train and test, e.g. user 7 item 3"):
        load_or_create(ds, LeaveLastOut(0, 1), tmp_path)
    sp = load_or_create(ds, LeaveLastOut(0, 1, allow_overlap=True), tmp_path)
    assert len(sp.test) == 2
    with pytest.raises(ValueError, match="split.allow_overlap=true"):  # a saved split is checked when read back
        load_or_create(ds, LeaveLastOut(0, 1), tmp_path)
