import math

import pytest
import torch

from mmbench.models.topn.userknn import UserKNN
from tests.helpers.data import make_interactions

# u0: i0 i1 | u1: i0 i1 i2 | u2: i2 i3
# cos(u0,u1) = 2/sqrt(6), cos(u1,u2) = 1/sqrt(6), cos(u0,u2) = 0
TRAIN = make_interactions([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3)], 3, 4)
S6 = math.sqrt(6)


def test_all_neighbours_hand_computed():
    s = UserKNN(k=2).fit(TRAIN).score(torch.arange(3))
    # score(u, i) = sum over u's neighbours v of sim(u, v) * x_vi
    expected = [
        [2 / S6, 2 / S6, 2 / S6, 0],  # only u1 is similar to u0
        [2 / S6, 2 / S6, 1 / S6, 1 / S6],  # u0 and u2
        [1 / S6, 1 / S6, 1 / S6, 0],  # only u1
    ]
    torch.testing.assert_close(s, torch.tensor(expected), atol=1e-6, rtol=0)
    # u0's unseen items: i2 (via u1) ranks above i3 (no neighbour has it)
    assert s[0, 2] > s[0, 3]


def test_k_keeps_only_the_nearest_neighbour():
    s = UserKNN(k=1).fit(TRAIN).score(torch.tensor([1]))
    torch.testing.assert_close(s, torch.tensor([[2 / S6, 2 / S6, 0, 0]]), atol=1e-6, rtol=0)


def test_shrinkage_blocks_and_item_subset():
    a = UserKNN(k=2, shrink=1.0, block_size=1).fit(TRAIN)
    b = UserKNN(k=2, shrink=1.0, block_size=100).fit(TRAIN)
    assert a.W[0, 1] == pytest.approx(2 / (S6 + 1))
    torch.testing.assert_close(a.score(torch.arange(3)), b.score(torch.arange(3)))
    torch.testing.assert_close(a.score(torch.arange(3), torch.tensor([3, 0])), a.score(torch.arange(3))[:, [3, 0]])
    with pytest.raises(ValueError, match="model.k"):
        UserKNN(k=0)
