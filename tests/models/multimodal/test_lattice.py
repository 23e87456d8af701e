"""LATTICE: the kNN graph by hand, the learned / fixed graph mixing and the scores against float64 numpy, the
graph's gradient at an epoch's first batch only, masked items."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmbench.data.ml100k_mm import MovieLens100KMM
from mmbench.encoders.base import ModalityFeatures
from mmbench.models.multimodal.lattice import LATTICE, FixedOperator, edge_mm, knn_edges, normalise_edges
from tests.helpers.data import make_interactions
from tests.helpers.graphs import GRAPH
from tests.helpers.real_data import cheap_features, val_ndcg_vs_pop, warm_split


def _dense(edges, n: int) -> np.ndarray:
    a = np.zeros((n, n))
    np.add.at(a, (edges[0].numpy(), edges[1].numpy()), edges[2].detach().double().numpy())
    return a


def test_knn_graph_by_hand():
    """x0 = (1, 0), x1 = (2, 1), x2 = (0, 1), k = 2 (self included): cos(0, 1) = 2/√5, cos(1, 2) = 1/√5, cos(0, 2) = 0;
    rows keep {0, 1}, {1, 0}, {2, 1}; degrees 1 + 2/√5, 1 + 2/√5, 1 + 1/√5."""
    x = torch.tensor([[1.0, 0.0], [2.0, 1.0], [0.0, 1.0]])
    r, c, v = knn_edges(x, torch.ones(3, dtype=torch.bool), k=2)
    s5 = math.sqrt(5)
    a, b = 2 / s5, 1 / s5
    raw = np.array([[1, a, 0], [a, 1, 0], [0, b, 1]])
    np.testing.assert_allclose(_dense((r, c, v), 3), raw, atol=1e-6)
    d0, d2 = 1 + a, 1 + b
    norm = np.array([[1 / d0, a / d0, 0], [a / d0, 1 / d0, 0], [0, b / math.sqrt(d2 * d0), 1 / d2]])
    np.testing.assert_allclose(_dense((r, c, normalise_edges(r, c, v, 3)), 3), norm, atol=1e-6)
    # the weights' gradient (finite differences; the neighbour sets do not change under the small steps)
    xd = x.double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: knn_edges(t, torch.ones(3, dtype=torch.bool), k=2)[2], (xd,))
    # an unavailable item has no edge, in or out; the others choose among the available ones
    r, c, v = knn_edges(x, torch.tensor([True, False, True]), k=2)
    np.testing.assert_allclose(_dense((r, c, v), 3), [[1, 0, 0], [0, 0, 0], [0, 0, 1]], atol=1e-6)


def test_fixed_operator_multiplies_by_the_directed_graph_and_back_by_its_transpose():
    rows, cols = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([1, 1, 2, 0, 1, 2])  # (0, 1) twice: they add up
    vals = torch.tensor([0.5, 0.25, 2.0, -1.0, 3.0, 0.5])
    a = np.zeros((3, 3))
    np.add.at(a, (rows.numpy(), cols.numpy()), vals.numpy())
    x = torch.randn(3, 2, dtype=torch.float32, requires_grad=True)
    w = torch.randn(3, 2)
    for op in (FixedOperator((rows, cols, vals), 3), lambda z: edge_mm((rows, cols, vals), z)):
        y = op(x)
        np.testing.assert_allclose(y.detach().numpy(), a @ x.detach().numpy(), rtol=1e-6, atol=1e-6)
        (g,) = torch.autograd.grad((y * w).sum(), x)
        np.testing.assert_allclose(g.numpy(), a.T @ w.numpy(), rtol=1e-6, atol=1e-6)


def _np_knn(x: np.ndarray, k: int) -> np.ndarray:
    """Dense weighted kNN (self included) by a full sort, float64."""
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = z @ z.T
    keep = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    a = np.zeros_like(sim)
    np.put_along_axis(a, keep, np.take_along_axis(sim, keep, 1), 1)
    return a


def _np_norm(a: np.ndarray) -> np.ndarray:
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    return inv[:, None] * a * inv[None, :]


RNG = np.random.default_rng(1)
N_ITEMS = 6
TRAIN = make_interactions([(0, 0), (0, 3), (1, 1), (1, 2), (1, 5), (2, 4), (2, 0), (3, 2)], 4, N_ITEMS)
FEATS = {
    "image": ModalityFeatures("image", np.ones(N_ITEMS, bool), RNG.normal(size=(N_ITEMS, 5)).astype(np.float32)),
    "text": ModalityFeatures("text", np.ones(N_ITEMS, bool), RNG.normal(size=(N_ITEMS, 3)).astype(np.float32)),
}


def _model(**kw) -> LATTICE:
    torch.manual_seed(0)
    m = LATTICE(embedding_dim=4, feat_embed_dim=3, k=3, **kw)
    m.set_features(FEATS)
    m.build(TRAIN)
    return m


def test_item_graph_mixes_learned_and_raw_feature_graphs_and_scores_match_numpy():
    m = _model(lambda_coeff=0.7, n_layers=1, n_ui_layers=2)
    with torch.no_grad():
        m.modal_weight.copy_(torch.tensor([0.2, -0.4]))
    alpha = np.exp([0.2, -0.4]) / np.exp([0.2, -0.4]).sum()
    proj = {
        n: FEATS[n].values.astype(np.float64) @ m.proj[n].weight.detach().double().numpy().T
        + m.proj[n].bias.detach().double().numpy()
        for n in FEATS
    }
    learned = _np_norm(alpha[0] * _np_knn(proj["image"], 3) + alpha[1] * _np_knn(proj["text"], 3))
    fixed = alpha[0] * _np_norm(_np_knn(FEATS["image"].values.astype(np.float64), 3))
    fixed += alpha[1] * _np_norm(_np_knn(FEATS["text"].values.astype(np.float64), 3))
    a = 0.3 * learned + 0.7 * fixed
    np.testing.assert_allclose(_dense(m.item_graph(), N_ITEMS), a, atol=1e-6)

    # scores: h = A e_i; LightGCN mean of 3 layers over D^-1 (R + I); item vector ē_i + h_i / |h_i|
    nu = 4
    r = np.zeros((nu + N_ITEMS, nu + N_ITEMS))
    coo = TRAIN.to_csr().tocoo()
    r[coo.row, nu + coo.col] = r[nu + coo.col, coo.row] = 1
    r += np.eye(nu + N_ITEMS)
    p = r / r.sum(1, keepdims=True)
    e0 = np.vstack([m.user_emb.weight.detach().double().numpy(), m.item_emb.weight.detach().double().numpy()])
    out = (e0 + p @ e0 + p @ p @ e0) / 3
    h = a @ e0[nu:]
    items = out[nu:] + h / np.linalg.norm(h, axis=1, keepdims=True)
    expected = out[:nu] @ items.T
    with torch.no_grad():
        got = m.score(torch.arange(nu)).double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_graph_gets_gradient_at_an_epochs_first_batch_only():
    m = _model()
    batches = iter(m.train_data(TRAIN, 4, seed=0))  # calls start_epoch(0)
    for step in range(2):
        m.zero_grad(set_to_none=True)
        m.loss(next(batches)).backward()
        graph_params = [m.proj["image"].weight, m.proj["text"].weight, m.modal_weight, m.tables["text"]]
        has_grad = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in graph_params]
        assert has_grad == [step == 0] * 4, step
        assert m.item_emb.weight.grad.abs().sum() > 0  # through h and the user-item graph, every batch
    m.start_epoch(1)
    m.zero_grad(set_to_none=True)
    m.loss(next(iter(m.train_data(TRAIN, 4, seed=0)))).backward()
    assert m.modal_weight.grad is not None


def test_masked_items_have_no_edges_and_scores_stay_finite():
    feats = dict(FEATS)
    feats["image"] = ModalityFeatures("image", np.array([1, 1, 0, 1, 1, 1], bool), FEATS["image"].values)
    m = LATTICE(embedding_dim=4, feat_embed_dim=3, k=3, modalities=["image"])
    m.set_features(feats)
    m.build(TRAIN)
    a = _dense(m.item_graph(), N_ITEMS)
    assert not a[2].any() and not a[:, 2].any() and a[0].any()
    with torch.no_grad():
        assert torch.isfinite(m.score(torch.arange(4))).all()


def test_loss_is_bpr_with_regularised_batch_vectors():
    m = _model(reg_weight=0.1)
    u, i, j = torch.tensor([0, 1]), torch.tensor([3, 2]), torch.tensor([1, 0])
    got = m.loss((u, i, j))
    with torch.no_grad():
        eu, ei = m.propagate(m.item_graph())
    pu, pi, pj = eu[u].double().numpy(), ei[i].double().numpy(), ei[j].double().numpy()
    x = (pu * (pi - pj)).sum(1)
    reg = ((pu**2).sum(1) + (pi**2).sum(1) + (pj**2).sum(1)) / 2
    assert got.item() == pytest.approx(np.mean(np.log1p(np.exp(-x)) + 0.1 * reg), rel=1e-5)


def test_rejects_bad_settings():
    with pytest.raises(ValueError, match="lambda_coeff"):
        LATTICE(lambda_coeff=1.5)
    with pytest.raises(ValueError, match="at least 1 modality"):
        LATTICE().set_features({})
    with pytest.raises(ValueError, match="set_features"):
        LATTICE().build(GRAPH)


@pytest.mark.slow
def test_ml100k_mm_a_few_epochs_beat_pop_on_validation(data_dir, tmp_path):
    ds = MovieLens100KMM(str(data_dir), download=False).read()
    split = warm_split(ds, tmp_path)
    m = LATTICE(optimizer=lambda p: torch.optim.Adam(p, lr=0.005))
    m.set_features(cheap_features(ds, split.train, tmp_path))
    got, pop = val_ndcg_vs_pop(m, split, epochs=3)
    print(f"ML-100K-MM val ndcg@20 LATTICE {got:.4f} Pop {pop:.4f}")
    assert got > pop + 0.02, (got, pop)
