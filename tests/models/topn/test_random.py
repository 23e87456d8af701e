import torch

from mmbench.models.topn.random import Random
from tests.helpers.data import make_interactions

TRAIN = make_interactions([(0, 0)], 100, 200)


def test_seeded_uniform_and_independent_of_batching():
    m = Random(seed=1).fit(TRAIN)
    all_users = m.score(torch.arange(100))
    assert all_users.shape == (100, 200)
    assert 0 <= all_users.min() and all_users.max() < 1
    assert abs(all_users.mean().item() - 0.5) < 0.01
    torch.testing.assert_close(m.score(torch.tensor([7, 3])), all_users[[7, 3]])
    torch.testing.assert_close(m.score(torch.tensor([7]), torch.tensor([5, 9])), all_users[[7]][:, [5, 9]])
    assert not torch.equal(Random(seed=2).fit(TRAIN).score(torch.arange(100)), all_users)
    # rankings of different users are (nearly) uncorrelated
    r = torch.corrcoef(all_users[:2])[0, 1].item()
    assert abs(r) < 0.25
