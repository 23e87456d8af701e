import torch

from mmbench.models.topn.pop import Pop
from tests.helpers.data import make_interactions


def test_scores_are_training_counts_for_everybody():
    train = make_interactions([(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 0)], 3, 4)
    m = Pop().fit(train)
    s = m.score(torch.tensor([0, 2]))
    torch.testing.assert_close(s, torch.tensor([[1.0, 3, 2, 0], [1, 3, 2, 0]]))
    s[0, 0] = -1  # callers may mask in place: rows are fresh tensors
    assert m.score(torch.tensor([0]))[0, 0] == 1
    torch.testing.assert_close(m.score(torch.tensor([1]), torch.tensor([3, 1])), torch.tensor([[0.0, 3]]))
