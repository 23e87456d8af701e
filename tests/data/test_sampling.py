import numpy as np
import torch

from mmbench.data.sampling import PairwiseSampler, UserSampler
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
