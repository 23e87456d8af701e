"""FREEDOM: degree-sensitive pruning, normalised graphs, cold items reached through the modality graph."""

from __future__ import annotations

import numpy as np
import torch

from mmbench.models.multimodal.freedom import FREEDOM
from tests.helpers.multimodal import cold_ndcg, cold_setup


def test_pruning_keeps_the_share_and_prefers_low_degree_edges(tmp_path):
    ds, split, feats = cold_setup(tmp_path, n_users=100, n_items=100)
    m = FREEDOM(embedding_dim=8, dropout=0.5)
    m.set_features(feats)
    m.build(split.train)
    n_edges = len(m.edges_u)
    full = m.full_adj.to_dense()
    assert torch.allclose(full, full.T, atol=1e-6)
    m.prune(0)
    kept = m.train_adj.coalesce().indices().shape[1] // 2
    assert kept == int(n_edges * 0.5)
    # over many epochs, an edge's keep rate grows with its probability 1/sqrt(d_u d_i)
    counts = np.zeros(n_edges)
    nu = m.n_users
    for e in range(30):
        m.prune(e)
        idx = m.train_adj.coalesce().indices().numpy()
        up = idx[:, idx[0] < nu]
        key = set(zip(up[0].tolist(), (up[1] - nu).tolist()))
        counts += [(u, i) in key for u, i in zip(m.edges_u, m.edges_i)]
    lo, hi = m.edge_p < np.quantile(m.edge_p, 0.2), m.edge_p > np.quantile(m.edge_p, 0.8)
    assert counts[hi].mean() > counts[lo].mean()
    assert m.score(torch.tensor([0, 1])).shape == (2, ds.n_items)


def test_cold_items_beat_random(tmp_path):
    ds, split, feats = cold_setup(tmp_path)
    m = FREEDOM(embedding_dim=16, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    m.set_features(feats)
    got, base = cold_ndcg(m, split)
    assert got > 1.5 * base and got - base > 0.05, (got, base)
