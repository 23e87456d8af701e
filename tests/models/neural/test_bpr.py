import numpy as np
import pytest
import torch

from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.training import NeuralTrainer
from tests.conftest import make_interactions


def two_communities(n=20, m=20):
    """Users 0..n/2-1 like items 0..m/2-1, the others the rest; each user saw all but 3 of their group."""
    rng = np.random.default_rng(0)
    train, held = [], []
    for u in range(n):
        group = range(0, m // 2) if u < n // 2 else range(m // 2, m)
        items = rng.permutation(list(group))
        train += [(u, int(i)) for i in items[3:]]
        held += [(u, int(i)) for i in items[:3]]
    return make_interactions(train, n, m), make_interactions(held, n, m)


def test_learns_the_community_structure():
    train, held = two_communities()
    model = BPR(embedding_dim=8, optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    NeuralTrainer(max_epochs=60, batch_size=64, enable_progress_bar=False).fit(model, train, None, Evaluator())
    r = Evaluator(ks=[3], metrics=["recall"], progress=False).evaluate(model, held, [train])
    assert r.means["recall@3"] > 0.75  # random ranking gives 3/13 ~ 0.23


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
