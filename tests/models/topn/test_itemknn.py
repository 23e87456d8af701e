import math

import pytest
import torch

from mmbench.models.topn.itemknn import ItemKNN
from tests.helpers.data import make_interactions

# u0: i0 i1 | u1: i0 i1 i2 | u2: i2 i3
# cos(i0,i1)=1, cos(i0,i2)=cos(i1,i2)=0.5, cos(i2,i3)=1/sqrt(2), cos(i0,i3)=cos(i1,i3)=0
TRAIN = make_interactions([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3)], 3, 4)
R2 = 1 / math.sqrt(2)


def test_all_neighbours_hand_computed():
    m = ItemKNN(k=3).fit(TRAIN)
    s = m.score(torch.tensor([0, 2]))
    # score(u, j) = sum over j's neighbours i of sim(j, i) * x_ui
    expected = [[1.0, 1.0, 0.5 + 0.5, 0.0], [0.5, 0.5, R2, R2]]
    torch.testing.assert_close(s, torch.tensor(expected), atol=1e-6, rtol=0)


def test_k_keeps_only_the_nearest_neighbour():
    m = ItemKNN(k=1).fit(TRAIN)
    s = m.score(torch.tensor([0, 2]))
    # N(i0)={i1}, N(i1)={i0}, N(i2)={i3}, N(i3)={i2}
    torch.testing.assert_close(s, torch.tensor([[1.0, 1.0, 0, 0], [0, 0, R2, R2]]), atol=1e-6, rtol=0)


def test_shrinkage_and_blocks():
    a = ItemKNN(k=3, shrink=1.0, block_size=1).fit(TRAIN)
    b = ItemKNN(k=3, shrink=1.0, block_size=100).fit(TRAIN)
    assert a.W[0, 1] == pytest.approx(2 / (2 + 1))
    torch.testing.assert_close(a.score(torch.arange(3)), b.score(torch.arange(3)))
