"""VBPR: the scoring formula by hand; content lets it rank cold items far above random."""

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


def test_cold_items_beat_random(tmp_path):
    ds, split, feats = cold_setup(tmp_path)
    m = VBPR(embedding_dim=16, content_dim=16, optimizer=lambda p: torch.optim.Adam(p, lr=0.005))
    m.set_features(feats)
    got, base = cold_ndcg(m, split, epochs=30)
    assert got > 2 * base and got - base > 0.1, (got, base)
