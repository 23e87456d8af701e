"""Mult-DAE: the network and loss against a float64 numpy computation, the shared fold-in scoring, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.data.sampling import UserSampler
from mmbench.models.neural.multdae import MultDAE
from mmbench.models.neural.multivae import MultAutoencoder
from tests.helpers.data import make_interactions
from tests.helpers.models import community_recall
from tests.helpers.real_data import val_ndcg_vs_pop, warm_split

# 3 users, 5 items; user 2 has the same row as user 0
TINY = make_interactions([(0, 0), (0, 3), (1, 1), (1, 2), (1, 4), (2, 0), (2, 3)], 3, 5)


def _numpy_logits(model: MultDAE, x: np.ndarray) -> np.ndarray:
    """The paper's network in float64: L2-normalised rows, tanh after every layer but the last."""
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    h = x / np.linalg.norm(x, axis=1, keepdims=True)
    for k, m in enumerate(lin):
        h = h @ m.weight.detach().double().numpy().T + m.bias.detach().double().numpy()
        if k < len(lin) - 1:
            h = np.tanh(h)
    return h


def test_network_is_the_mirrored_tanh_mlp():
    m = MultDAE(encoder_dims=[4, 2])
    m.build(TINY)
    shapes = [tuple(p.weight.shape) for p in m.modules() if isinstance(p, torch.nn.Linear)]
    assert shapes == [(4, 5), (2, 4), (4, 2), (5, 4)]  # 5 -> 4 -> 2 -> 4 -> 5
    assert isinstance(m, MultAutoencoder)
    assert sum(p.numel() for p in m.parameters()) == 5 * 4 + 4 + 4 * 2 + 2 + 2 * 4 + 4 + 4 * 5 + 5


def test_loss_matches_numpy_with_dropout_off():
    m = MultDAE(encoder_dims=[4, 2], dropout=0.0, reg=0.3)
    m.build(TINY)
    m.train()
    x = TINY.to_csr().toarray()[[1, 0]].astype(np.float64)
    got = m.loss((torch.tensor([1, 0]),)).item()
    logits = _numpy_logits(m, x)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    weights = sum(
        (p.weight.detach().double().numpy() ** 2).sum() for p in m.modules() if isinstance(p, torch.nn.Linear)
    )
    assert got == pytest.approx(-(logp * x).sum(1).mean() + 0.3 * weights, rel=1e-5)


def test_dropout_corrupts_the_input_in_training_only():
    m = MultDAE(encoder_dims=[4, 2], dropout=0.5)
    m.build(TINY)
    x = torch.from_numpy(TINY.to_csr().toarray().astype(np.float32))
    torch.manual_seed(0)
    m.train()
    noisy = [m(x)[0] for _ in range(3)]
    assert not all(torch.equal(noisy[0], n) for n in noisy[1:])
    m.eval()
    np.testing.assert_allclose(m(x)[0].detach().double().numpy(), _numpy_logits(m, x.double().numpy()), rtol=1e-5)


def test_scores_are_the_reconstruction_of_the_training_row():
    m = MultDAE(encoder_dims=[4, 2])
    m.build(TINY)
    m.eval()
    with torch.no_grad():
        got = m.score(torch.tensor([0, 1, 2])).double().numpy()
        some = m.score(torch.tensor([1]), torch.tensor([4, 0])).double().numpy()
    expected = _numpy_logits(m, TINY.to_csr().toarray().astype(np.float64))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(some, expected[[1], [4, 0]][None], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[0], got[2])  # fold-in: same training row, same scores


def test_batches_and_bad_arguments():
    assert isinstance(MultDAE(users_per_batch=2).train_data(TINY, 2048, 0), UserSampler)
    assert MultDAE(users_per_batch=None).train_data(TINY, 64, 0).batch_size == 64
    for bad, match in (({"reg": -1.0}, "reg"), ({"dropout": 1.0}, "dropout"), ({"encoder_dims": []}, "encoder_dims")):
        with pytest.raises(ValueError, match=match):
            MultDAE(**bad)


def test_learns_the_community_structure():
    model = MultDAE(encoder_dims=[16, 4], users_per_batch=8, reg=1e-4, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    assert community_recall(model, epochs=60) > 0.75


@pytest.mark.slow
def test_ml100k_a_few_epochs_beat_pop_on_validation(ml100k, tmp_path):
    split = warm_split(ml100k, tmp_path)
    got, pop = val_ndcg_vs_pop(MultDAE(users_per_batch=100), split, epochs=15)
    print(f"ML-100K val ndcg@20 MultDAE {got:.4f} Pop {pop:.4f}")
    assert got > pop + 0.02, (got, pop)
