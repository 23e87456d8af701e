"""VBPR: the scoring formula and the loss by hand; content lets it rank cold items far above random."""

from __future__ import annotations

import numpy as np
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
