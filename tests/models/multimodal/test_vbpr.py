"""VBPR: the scoring formula and the loss by hand; content lets it rank cold items far above random."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from mmbench.encoders.base import ModalityFeatures
from mmbench.models.multimodal.vbpr import VBPR
from tests.helpers.data import make_interactions
from tests.helpers.multimodal import cold_ndcg, cold_setup


def test_score_formula_by_hand():
    f = np.array([[3.0, 4.0], [0.0, 5.0], [1.0, 1.0]], np.float32)  # mean row norm of available rows = 5
    feats = {"v": ModalityFeatures("v", np.array([True, True, False]), values=f)}
    m = VBPR(embedding_dim=2, content_dim=2)
    m.set_features(feats)
    m.build(make_interactions([(0, 0), (1, 1)], 2, 3))
    with torch.no_grad():
        m.beta_i.weight[:] = torch.tensor([[0.5], [0.0], [1.0]])
        m.beta_c.weight[:] = torch.tensor([[1.0, 0.0]])
    s = m.score(torch.tensor([0]))[0]
    fi = torch.tensor([[0.6, 0.8], [0.0, 1.0], [0.0, 0.0]])  # scaled; item 2 masked -> zeros
    want = (
        torch.tensor([0.5, 0.0, 1.0])
        + m.gamma_i.weight @ m.gamma_u.weight[0]
        + (fi @ m.E.weight.T) @ m.theta_u.weight[0]
        + fi[:, 0]
    )
    assert torch.allclose(s, want, atol=1e-6)


def test_loss_by_hand_with_repeated_items():
    """The loss projects each distinct item once; it equals the per-pair BPR loss from the model's own scores
    (repeated positives and negatives included) plus the L2 terms."""
    rng = np.random.default_rng(0)
    feats = {
        "v": ModalityFeatures("v", np.array([True, True, False, True]), values=rng.normal(size=(4, 3)).astype("f4"))
    }
    m = VBPR(embedding_dim=2, content_dim=2, reg=0.1, reg_content=0.2)
    m.set_features(feats)
    m.build(make_interactions([(0, 0), (1, 1), (2, 3)], 3, 4))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.as_tensor(rng.normal(size=tuple(p.shape)), dtype=torch.float32))
    u, i, j = torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 3, 0]), torch.tensor([2, 2, 0, 1])
    s = m.score(torch.arange(3))  # (users, items); the user terms cancel in s[u, i] - s[u, j]
    x = s[u, i] - s[u, j]
    reg = sum(w(idx).pow(2).sum(-1) for w, idx in ((m.gamma_u, u), (m.theta_u, u), (m.gamma_i, i), (m.gamma_i, j)))
    reg = reg + m.beta_i(i).squeeze(-1) ** 2 + m.beta_i(j).squeeze(-1) ** 2
    reg_c = m.E.weight.pow(2).sum() + m.beta_c.weight.pow(2).sum()
    want = (-torch.nn.functional.logsigmoid(x) + 0.1 * reg / 2).mean() + 0.2 * reg_c / 2
    assert torch.allclose(m.loss((u, i, j)), want, atol=1e-6)


def test_cold_items_beat_random(tmp_path):
    ds, split, feats = cold_setup(tmp_path)
    m = VBPR(embedding_dim=16, content_dim=16, optimizer=lambda p: torch.optim.Adam(p, lr=0.005))
    m.set_features(feats)
    got, base = cold_ndcg(m, split, epochs=30)
    assert got > 2 * base and got - base > 0.1, (got, base)


def test_sparse_id_tables_take_lazy_adam_the_projection_adam_and_the_loss_is_unchanged():
    rng = np.random.default_rng(0)
    feats = {"v": ModalityFeatures("v", np.ones(6, bool), values=rng.normal(size=(6, 3)).astype("f4"))}
    train = make_interactions([(0, 0), (1, 1), (2, 3)], 3, 6)
    adam = partial(torch.optim.Adam, lr=0.01, betas=(0.8, 0.9))
    dense, sparse = VBPR(embedding_dim=2, content_dim=2, optimizer=adam), VBPR(2, 2, optimizer=adam, sparse=True)
    for m in (dense, sparse):
        m.set_features(feats)
        torch.manual_seed(0)
        m.build(train)
    u, i, j = torch.tensor([0, 2]), torch.tensor([0, 3]), torch.tensor([5, 5])
    torch.testing.assert_close(sparse.loss((u, i, j)), dense.loss((u, i, j)))
    sparse.loss((u, i, j)).backward()
    for table, rows in ((sparse.gamma_u, {0, 2}), (sparse.theta_u, {0, 2}), (sparse.gamma_i, {0, 3, 5})):
        assert table.weight.grad.is_sparse and set(table.weight.grad.coalesce().indices()[0].tolist()) == rows
    assert not sparse.E.weight.grad.is_sparse
    lazy, rest = sparse.configure_optimizer()
    assert isinstance(lazy, torch.optim.SparseAdam) and type(rest) is torch.optim.Adam
    assert {id(p) for p in lazy.param_groups[0]["params"]} == {
        id(t.weight) for t in (sparse.gamma_u, sparse.gamma_i, sparse.theta_u, sparse.beta_i)
    }
    assert {id(p) for p in rest.param_groups[0]["params"]} == {id(sparse.E.weight), id(sparse.beta_c.weight)}
    assert lazy.defaults["lr"] == rest.defaults["lr"] == 0.01 and lazy.defaults["betas"] == (0.8, 0.9)
    before = sparse.gamma_i.weight.detach().clone()
    for o in (lazy, rest):
        o.step()
    changed = (sparse.gamma_i.weight != before).any(1).nonzero().ravel().tolist()
    assert changed == [0, 3, 5]  # lazy Adam moved the batch's item rows only
    assert "model.sparse=true" in sparse.user_level_dp_blocker() and dense.user_level_dp_blocker() is None
    with pytest.raises(ValueError, match="SparseAdam; model.optimizer is SGD"):
        VBPR(optimizer=partial(torch.optim.SGD, lr=0.1), sparse=True)


def test_sparse_vbpr_trains_and_ranks_cold_items_above_random(tmp_path):
    ds, split, feats = cold_setup(tmp_path)
    m = VBPR(embedding_dim=16, content_dim=16, optimizer=partial(torch.optim.Adam, lr=0.005), sparse=True)
    m.set_features(feats)
    got, base = cold_ndcg(m, split, epochs=30)
    assert got > 2 * base and got - base > 0.1, (got, base)
