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
    kept = m.train_adj.to_sparse_coo().coalesce().indices().shape[1] // 2
    assert kept == int(n_edges * 0.5)
    # over many epochs, an edge's keep rate grows with its probability 1/sqrt(d_u d_i)
    counts = np.zeros(n_edges)
    nu = m.n_users
    for e in range(30):
        m.prune(e)
        idx = m.train_adj.to_sparse_coo().coalesce().indices().numpy()
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


def test_without_modalities_is_lightgcn_on_the_user_item_graph(tmp_path):
    """modalities=[]: no item-item graph, no feature loss; scores are LightGCN's mean of layers over the full
    normalised user-item graph, computed here densely with numpy; it trains (the loss falls)."""
    ds, split, feats = cold_setup(tmp_path, n_users=60, n_items=50)
    m = FREEDOM(embedding_dim=8, modalities=[], n_ui_layers=2)
    m.set_features(feats)
    assert m.features == {}
    m.build(split.train)
    assert m.mm_adj is None and len(m.proj) == 0
    nu, ni = m.n_users, m.n_items
    a = np.zeros((nu + ni, nu + ni))
    seen = split.train.to_csr().tocoo()
    a[seen.row, nu + seen.col] = a[nu + seen.col, seen.row] = 1
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1)), 0)
    norm = inv[:, None] * a * inv[None, :]
    e0 = torch.cat([m.user_emb.weight, m.item_emb.weight]).detach().numpy().astype(np.float64)
    out = (e0 + norm @ e0 + norm @ norm @ e0) / 3
    expected = out[:nu] @ out[nu:].T
    with torch.no_grad():
        got = m.score(torch.arange(nu)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    batch = next(iter(m.train_data(split.train, 256, 0)))
    first = m.loss(batch).item()
    for _ in range(30):
        opt.zero_grad()
        m.loss(batch).backward()
        opt.step()
    assert m.loss(batch).item() < 0.9 * first
