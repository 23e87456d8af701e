import pytest
import torch

from mmbench.models.neural.bpr import BPR
from tests.helpers.data import make_interactions, two_communities
from tests.helpers.models import community_recall


def test_learns_the_community_structure():
    model = BPR(embedding_dim=8, optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    assert community_recall(model, epochs=60, batch_size=64) > 0.75


def test_loss_matches_formula():
    train, _ = two_communities()
    model = BPR(embedding_dim=4, reg=0.1)
    model.build(train)
    u, i, j = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([15, 16])
    pu, qi, qj = model.user_emb.weight[u], model.item_emb.weight[i], model.item_emb.weight[j]
    x = (pu * qi).sum(1) - (pu * qj).sum(1)
    expected = (
        -torch.log(torch.sigmoid(x)) + 0.1 * (pu.pow(2).sum(1) + qi.pow(2).sum(1) + qj.pow(2).sum(1)) / 2
    ).mean()
    torch.testing.assert_close(model.loss((u, i, j)), expected)


def test_fit_points_to_the_trainer():
    with pytest.raises(TypeError, match=r"NeuralTrainer\(\.\.\.\)\.fit\(model, train, val\)"):
        BPR().fit(make_interactions([(0, 0)], 1, 2))
