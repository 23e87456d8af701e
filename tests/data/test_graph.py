"""Graph operators: kNN item graphs, the user-item graph and its normalisation, by hand."""

from __future__ import annotations

import numpy as np
import torch

from mmbench.data.graph import bipartite_graph, knn_graph, normalized_adjacency, sparse_mm, sym_normalise, to_torch
from tests.helpers.graphs import A_HAND, GRAPH


def test_normalized_adjacency_by_hand():
    a = normalized_adjacency(GRAPH)
    assert a.dtype == torch.float32 and a.is_coalesced()
    np.testing.assert_allclose(a.to_dense().numpy(), A_HAND, atol=1e-7)


def test_bipartite_graph_is_symmetric_with_one_edge_per_pair_and_float32_normalisation_matches():
    g = bipartite_graph(np.array([0, 0, 1, 2, 2, 0]), np.array([0, 1, 1, 1, 2, 0]), 3, 3)  # (0, 0) twice
    assert (g.toarray() == (A_HAND > 0)).all()
    np.testing.assert_allclose(sym_normalise(g).toarray(), A_HAND, atol=1e-7)


def test_sparse_mm_stays_float32_under_autocast():
    a = to_torch(sym_normalise(bipartite_graph(np.array([0, 1]), np.array([1, 0]), 2, 2)))
    x = torch.ones(4, 2, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = sparse_mm(a, x)
    assert y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), a.to_dense().numpy() @ np.ones((4, 2)), atol=1e-7)


def test_knn_graph_by_hand_and_missing_items_have_no_edges():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]], np.float32)
    mask = np.array([True, True, True, True, False])
    g = knn_graph(x, mask, k=1).toarray()
    assert g.tolist() == [
        [0, 1, 0, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    s = sym_normalise(knn_graph(x, mask, k=2)).toarray()
    assert np.allclose(s, s.T) and s[4].sum() == 0
