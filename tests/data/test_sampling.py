import numpy as np
import pytest
import torch

from mmbench.data.sampling import GroupedBatches, OrderedBatches, PairwiseSampler, UserSampler
from tests.helpers.data import make_interactions


def test_every_event_once_with_true_negatives_and_seeded_epochs():
    pairs = [(u, i) for u in range(5) for i in range(u, u + 6)]
    train = make_interactions(pairs, 5, 12)
    s = PairwiseSampler(train, batch_size=7, seed=3)
    epoch1 = [tuple(t.numpy() for t in b) for b in s]
    u = np.concatenate([b[0] for b in epoch1])
    i = np.concatenate([b[1] for b in epoch1])
    j = np.concatenate([b[2] for b in epoch1])
    assert len(epoch1) == len(s) == 5 and max(len(b[0]) for b in epoch1) == 7
    assert sorted(zip(u.tolist(), i.tolist())) == sorted(pairs)
    positives = set(pairs)
    assert not any((a, b) in positives for a, b in zip(u.tolist(), j.tolist()))
    epoch2 = np.concatenate([b[0] for b in s])
    assert not np.array_equal(u, epoch2)  # a new shuffle each epoch
    again = PairwiseSampler(train, batch_size=7, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[2] for b in again]), j)


def test_dense_and_sorted_key_lookups_give_the_same_negatives(monkeypatch):
    train = make_interactions([(u, i) for u in range(6) for i in range(9) if (u + i) % 3], 6, 9)
    dense = PairwiseSampler(train, 4, seed=5)
    monkeypatch.setattr(PairwiseSampler, "DENSE_LIMIT", 0)
    keyed = PairwiseSampler(train, 4, seed=5)
    assert dense._dense is not None and keyed._dense is None
    for _ in range(3):  # three epochs
        for a, b in zip(dense, keyed, strict=True):
            for x, y in zip(a, b, strict=True):
                assert torch.equal(x, y)
            u, j = a[0].numpy(), a[2].numpy()
            assert not ((u + j) % 3).any()  # every negative is an unseen item: (u + j) divisible by 3


def test_user_batches_cover_each_training_user_once_per_epoch():
    # users 0, 2, 3, 5 have events; 1 and 4 have none and are never a batch member
    train = make_interactions([(0, 1), (2, 0), (2, 3), (3, 2), (5, 1), (5, 2), (5, 0)], 6, 4)
    s = UserSampler(train, batch_size=3, seed=1)
    epoch1 = [b[0].numpy() for b in s]
    assert len(epoch1) == len(s) == 2 and [len(b) for b in epoch1] == [3, 1]
    assert sorted(np.concatenate(epoch1).tolist()) == [0, 2, 3, 5]
    orders = [np.concatenate([b[0].numpy() for b in s]) for _ in range(5)]
    assert any(not np.array_equal(o, np.concatenate(epoch1)) for o in orders)  # reshuffled per epoch
    again = UserSampler(train, batch_size=3, seed=1)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in again]), np.concatenate(epoch1))


def test_on_epoch_is_called_before_each_epoch_with_its_index():
    train = make_interactions([(0, 0), (1, 1), (2, 0)], 3, 3)
    seen: list[tuple[int, int]] = []
    s = PairwiseSampler(train, 2, seed=0, on_epoch=lambda e: seen.append((e, len(batches))))
    batches: list = []
    for _ in range(2):
        batches.extend(s)
    assert seen == [(0, 0), (1, 2)]


def _epoch(stream, rank, world):
    stream.shard(rank, world)
    return [tuple(t.numpy() for t in b) for b in stream]


def test_ddp_shards_are_disjoint_cover_the_epoch_and_make_up_the_single_process_batches():
    pairs = [(u, i) for u in range(9) for i in range(u % 4, u % 4 + 5)]  # 45 events
    train = make_interactions(pairs, 9, 12)
    whole = [tuple(t.numpy() for t in b) for b in PairwiseSampler(train, batch_size=8, seed=4)]  # 8 x5, then 5
    for world in (2, 3):
        shards = [_epoch(PairwiseSampler(train, batch_size=8, seed=4), r, world) for r in range(world)]
        assert {len(s) for s in shards} == {len(whole)}  # the same number of steps on every rank
        for step, batch in enumerate(whole):
            parts = [s[step] for s in shards]
            assert all(len(p[0]) >= 1 for p in parts)
            assert sorted(len(p[0]) for p in parts)[-1] - sorted(len(p[0]) for p in parts)[0] <= 1  # even shares
            for col in range(3):  # rank 0's rows, then rank 1's, ... are the single-process batch: same negatives
                np.testing.assert_array_equal(np.concatenate([p[col] for p in parts]), batch[col])
        events = [(int(a), int(b)) for s in shards for step in s for a, b in zip(step[0], step[1])]
        assert sorted(events) == sorted(pairs)  # disjoint and covering: every event exactly once over the ranks


def test_a_last_batch_smaller_than_the_ranks_joins_the_one_before():
    train = make_interactions([(u, i) for u in range(5) for i in range(2)], 5, 4)  # 10 events: 3, 3, 3, 1
    single = PairwiseSampler(train, batch_size=3, seed=0)
    assert len(single) == 4 and [len(b[0]) for b in single] == [3, 3, 3, 1]
    shards = [_epoch(PairwiseSampler(train, batch_size=3, seed=0), r, 2) for r in range(2)]
    assert len(PairwiseSampler(train, 3, 0)) == 4 and [len(s) for s in shards] == [3, 3]
    assert [[len(b[0]) for b in s] for s in shards] == [[1, 1, 2], [2, 2, 2]]  # the last step: 3 + 1 rows
    s = PairwiseSampler(train, 3, 0)
    s.shard(1, 2)
    assert len(s) == 3


def test_shards_refuse_a_batch_smaller_than_the_ranks_and_ordered_batches_shard_alike():
    train = make_interactions([(0, 0), (1, 1), (2, 0)], 3, 3)
    with pytest.raises(ValueError, match="batch_size=2 is smaller than the 3 processes"):
        UserSampler(train, 2).shard(0, 3)
    with pytest.raises(ValueError, match="rank 2 is not one of 2"):
        UserSampler(train, 2).shard(2, 2)
    users = np.array([1, 4, 6, 7, 9, 12, 13])
    parts = [_epoch(OrderedBatches(users, 4), r, 2) for r in range(2)]
    assert [[b[0].tolist() for b in p] for p in parts] == [[[1, 4], [9]], [[6, 7], [12, 13]]]


def test_several_negatives_per_event_are_all_true_negatives_and_one_keeps_the_old_stream():
    pairs = [(u, i) for u in range(5) for i in range(u, u + 6)]
    train = make_interactions(pairs, 5, 12)
    batches = list(PairwiseSampler(train, batch_size=7, seed=3, n_negatives=4))
    u = np.concatenate([b[0].numpy() for b in batches])
    j = np.concatenate([b[2].numpy() for b in batches])
    assert j.shape == (len(pairs), 4) and all(b[2].shape == (len(b[0]), 4) for b in batches)
    positives = set(pairs)
    assert not any((a, b) in positives for a, row in zip(u.tolist(), j.tolist()) for b in row)
    assert len({tuple(r) for r in j.tolist()}) > 1 and (j != j[:, :1]).any()  # draws differ within an event
    # one negative: the stream drawn before n_negatives existed (a seeded permutation, then one draw per event)
    rng = np.random.default_rng((3, 0))
    order = rng.permutation(len(pairs))
    one = PairwiseSampler(train, batch_size=7, seed=3)
    np.testing.assert_array_equal(np.concatenate([b[2].numpy() for b in one]), one.negatives(train.users[order], rng))


def test_grouped_batches_are_the_streams_batches_in_order_in_lists_of_size():
    train = make_interactions([(u, i) for u in range(9) for i in range(u % 4, u % 4 + 5)], 9, 12)  # 45 events
    whole = [tuple(t.numpy() for t in b) for b in PairwiseSampler(train, batch_size=8, seed=4)]  # 6 batches
    grouped = GroupedBatches(PairwiseSampler(train, batch_size=8, seed=4), 4)
    groups = [[tuple(t.numpy() for t in b) for b in g] for g in grouped]
    assert len(grouped) == 2 and [len(g) for g in groups] == [4, 2]
    for got, want in zip([b for g in groups for b in g], whole, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    assert len(GroupedBatches(whole, 1)) == 6 and len(GroupedBatches(whole, 6)) == 1 == len(GroupedBatches(whole, 99))
    stream = PairwiseSampler(train, batch_size=8, seed=4)
    stream.shard(1, 2)  # a sharded stream: its shards, grouped
    assert [len(b[0]) for g in GroupedBatches(stream, 5) for b in g] == [4, 4, 4, 4, 4, 3]
    with pytest.raises(ValueError, match="batches_per_call"):
        GroupedBatches(whole, 0)
