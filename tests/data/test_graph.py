"""Graph operators: kNN item graphs, the user-item graph and its normalisation, by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mmbench.data.graph import bipartite_graph, knn_graph, normalized_adjacency, sparse_mm, sym_normalise, to_torch
from tests.helpers.graphs import A_HAND, GRAPH


def test_normalized_adjacency_by_hand():
    a = normalized_adjacency(GRAPH)
    assert a.dtype == torch.float32 and a.layout == torch.sparse_csr
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


def test_sparse_mm_gradient_is_the_dense_products():
    """The symmetric backward (a @ grad) gives the gradient of the dense product, for a weighted graph."""
    rng = np.random.default_rng(0)
    a = sym_normalise(bipartite_graph(rng.integers(0, 5, 30), rng.integers(0, 7, 30), 5, 7))
    a = a + 0.3 * sym_normalise(knn_graph(rng.normal(size=(12, 3)).astype(np.float32), np.ones(12, bool), 2))
    x = torch.randn(12, 4, dtype=torch.float64).float().requires_grad_()
    w = torch.randn(12, 4)
    (sparse_mm(to_torch(a), sparse_mm(to_torch(a), x)) * w).sum().backward()
    dense = torch.as_tensor(a.toarray(), dtype=torch.float32)
    x2 = x.detach().clone().requires_grad_()
    (dense @ (dense @ x2) * w).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-6, rtol=1e-5)


def test_to_torch_refuses_a_non_symmetric_graph():
    with pytest.raises(ValueError, match="not symmetric"):
        to_torch(sp.csr_matrix(np.array([[0, 1.0], [0, 0]])))


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
