"""BM3: the loss pieces and scores against a float64 numpy computation, stop-gradient targets, feature tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmbench.data.ml100k_mm import MovieLens100KMM
from mmbench.encoders.base import ModalityFeatures
from mmbench.models.multimodal.bm3 import BM3
from tests.helpers.graphs import A_HAND, GRAPH
from tests.helpers.real_data import cheap_features, val_ndcg_vs_pop, warm_split

RNG = np.random.default_rng(0)
# 3 items: "image" (4-dim) is missing for item 2, "text" (3-dim) present everywhere
FEATS = {
    "image": ModalityFeatures("image", np.array([True, True, False]), RNG.normal(size=(3, 4)).astype(np.float32)),
    "text": ModalityFeatures("text", np.ones(3, bool), RNG.normal(size=(3, 3)).astype(np.float32)),
}


def _model(**kw) -> BM3:
    torch.manual_seed(0)
    m = BM3(embedding_dim=5, n_layers=1, **kw)
    m.set_features(FEATS)
    m.build(GRAPH)
    return m


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _online(m: BM3) -> tuple[np.ndarray, np.ndarray, callable]:
    """LightGCN mean of layers 0 and 1 over the hand-normalised graph, item id embedding added; the predictor."""
    e0 = np.vstack([_np(m.user_emb.weight), _np(m.item_emb.weight)])
    out = (e0 + A_HAND @ e0) / 2
    wp, bp = _np(m.predictor.weight), _np(m.predictor.bias)
    return out[:3], out[3:] + _np(m.item_emb.weight), lambda x: x @ wp.T + bp


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_loss_pieces_match_numpy_with_dropout_off():
    m = _model(dropout=0.0, reg_weight=0.1, cl_weight=2.0)
    users, items = np.array([0, 2, 1, 2]), np.array([1, 1, 2, 2])  # item 1 twice; item 2 has no image
    got = m.loss((torch.as_tensor(users), torch.as_tensor(items))).item()
    hu, hi, p = _online(m)
    expected = (1 - _cos(p(hu[users]), hi[items]).mean()) + (1 - _cos(p(hi[items]), hu[users]).mean())
    expected += 0.1 * (np.linalg.norm(hu) + np.linalg.norm(hi)) / 3
    for name, f in FEATS.items():
        w, b = _np(m.proj[name].weight), _np(m.proj[name].bias)
        proj = f.values.astype(np.float64)[items] @ w.T + b
        has = f.mask[items]  # the image terms average over the two events of item 1 only
        align = (1 - _cos(p(proj), hi[items]))[has].mean()
        intra = (1 - _cos(p(proj), proj))[has].mean()  # target = the projection itself when dropout is 0
        expected += 2.0 * (align + intra)
    assert got == pytest.approx(expected, rel=1e-5)


def test_targets_carry_no_gradient():
    """With only the two user-item terms, the embeddings' gradient is that of cos(p(h_u), sg(h_i)) +
    cos(p(h_i), sg(h_u)) (computed here with explicit detaches), not of the undetached expression."""
    m = _model(dropout=0.0, reg_weight=0.0, cl_weight=0.0)
    users, items = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2])
    m.loss((users, items)).backward()
    got = m.user_emb.weight.grad.clone()
    ref = _model(dropout=0.0, reg_weight=0.0, cl_weight=0.0)
    hu, hi = ref.propagate()
    p = ref.predictor
    sg = -F.cosine_similarity(p(hu[users]), hi[items].detach()).mean()
    sg = sg - F.cosine_similarity(p(hi[items]), hu[users].detach()).mean()
    (g_sg,) = torch.autograd.grad(sg, ref.user_emb.weight, retain_graph=True)
    full = -F.cosine_similarity(p(hu[users]), hi[items]).mean() - F.cosine_similarity(p(hi[items]), hu[users]).mean()
    (g_full,) = torch.autograd.grad(full, ref.user_emb.weight)
    torch.testing.assert_close(got, g_sg)
    assert not torch.allclose(got, g_full, atol=1e-4)


def test_target_dropout_is_drawn_once_per_row():
    """An item repeated in a batch meets the same perturbed target: the two copies' loss terms are equal."""
    m = _model(dropout=0.5, reg_weight=0.0, cl_weight=0.0)
    m.loss((torch.tensor([0, 0]), torch.tensor([1, 1])))  # warm-up call
    torch.manual_seed(3)
    both = m.loss((torch.tensor([0, 0]), torch.tensor([1, 1]))).item()
    torch.manual_seed(3)
    one = m.loss((torch.tensor([0]), torch.tensor([1]))).item()
    assert both == pytest.approx(one, rel=1e-6)


def test_scores_are_predicted_online_embeddings():
    m = _model()
    hu, hi, p = _online(m)
    with torch.no_grad():
        got = _np(m.score(torch.tensor([2, 0])))
        some = _np(m.score(torch.tensor([1]), torch.tensor([2, 0])))
    expected = p(hu) @ p(hi).T
    np.testing.assert_allclose(got, expected[[2, 0]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(some, expected[[1]][:, [2, 0]], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("train_features", [True, False])
def test_feature_tables_are_trained_only_when_asked(train_features):
    m = _model(train_features=train_features)
    before = m.tables["text"].detach().clone()
    opt = torch.optim.Adam(m.parameters(), lr=0.1)
    m.loss((torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]))).backward()
    opt.step()
    assert torch.equal(m.tables["text"].detach(), before) != train_features


def test_needs_a_modality():
    m = BM3()
    with pytest.raises(ValueError, match="at least 1 modality"):
        m.set_features({})
    with pytest.raises(ValueError, match="dropout"):
        BM3(dropout=1.0)


@pytest.mark.slow
def test_ml100k_mm_a_few_epochs_beat_pop_on_validation(data_dir, tmp_path):
    ds = MovieLens100KMM(str(data_dir), download=False).read()
    split = warm_split(ds, tmp_path)
    m = BM3(optimizer=lambda p: torch.optim.Adam(p, lr=0.01))  # MMRec's 0.001 needs many more epochs
    m.set_features(cheap_features(ds, split.train, tmp_path))
    got, pop = val_ndcg_vs_pop(m, split, epochs=6)
    print(f"ML-100K-MM val ndcg@20 BM3 {got:.4f} Pop {pop:.4f}")
    assert got > pop + 0.02, (got, pop)
