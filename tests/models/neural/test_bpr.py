from functools import partial

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


def test_sparse_learns_with_lazy_adam_and_the_same_loss():
    dense, sparse = BPR(embedding_dim=4, reg=0.1), BPR(embedding_dim=4, reg=0.1, sparse=True)
    train, _ = two_communities()
    for m in (dense, sparse):
        torch.manual_seed(0)
        m.build(train)
    batch = (torch.tensor([0, 1, 1]), torch.tensor([2, 3, 3]), torch.tensor([15, 16, 2]))
    torch.testing.assert_close(sparse.loss(batch), dense.loss(batch))
    sparse.loss(batch).backward()
    grad = sparse.item_emb.weight.grad
    assert grad.is_sparse and set(grad.coalesce().indices()[0].tolist()) == {2, 3, 15, 16}  # the batch's rows only
    opt = sparse.configure_optimizer()
    assert isinstance(opt, torch.optim.SparseAdam) and opt.defaults["lr"] == 1e-3

    model = BPR(embedding_dim=8, optimizer=partial(torch.optim.Adam, lr=0.05), sparse=True)
    assert community_recall(model, epochs=60, batch_size=64) > 0.75
    assert model.configure_optimizer().defaults["lr"] == 0.05
    assert "model.sparse=true" in model.user_level_dp_blocker() and BPR().user_level_dp_blocker() is None


@pytest.mark.parametrize(
    ("optimizer", "named"),
    [(partial(torch.optim.SGD, lr=0.1), "SGD"), (partial(torch.optim.Adam, lr=0.1, weight_decay=0.01), "weight_decay")],
)
def test_sparse_refuses_an_optimizer_without_a_sparse_form(optimizer, named):
    with pytest.raises(ValueError, match=rf"model.sparse=true trains with torch.optim.SparseAdam.*{named}"):
        BPR(optimizer=optimizer, sparse=True)


def test_sparse_takes_the_lr_of_a_multi_tensor_adam():
    """``foreach`` (conf/model's Adam) chooses an implementation, not an update: SparseAdam gets lr, betas, eps."""
    model = BPR(embedding_dim=4, optimizer=partial(torch.optim.Adam, lr=0.05, foreach=True), sparse=True)
    model.build(make_interactions([(0, 0), (1, 1)], 2, 3))
    opt = model.configure_optimizer()
    assert isinstance(opt, torch.optim.SparseAdam) and opt.defaults["lr"] == 0.05
