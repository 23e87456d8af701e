"""Mult-VAE: the loss against a float64 numpy computation, KL annealing, fold-in scoring, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.data.sampling import UserSampler
from mmbench.models.neural.multivae import MultiVAE
from tests.helpers.data import make_interactions
from tests.helpers.models import community_recall
from tests.helpers.real_data import val_ndcg_vs_pop, warm_split

# 3 users, 5 items; user 2 has the same row as user 0
TINY = make_interactions([(0, 0), (0, 3), (1, 1), (1, 2), (1, 4), (2, 0), (2, 3)], 3, 5)


def _weights(model: MultiVAE) -> tuple[list, list]:
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in lin[:2]], [
        (m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in lin[2:]
    ]


def _numpy_forward(model: MultiVAE, x: np.ndarray, eps: np.ndarray | None):
    """The paper's network in float64: L2-normalised rows, tanh MLPs, mu / logvar halves, z = mu + eps·σ."""
    (w1, b1), (w2, b2) = _weights(model)[0]
    (w3, b3), (w4, b4) = _weights(model)[1]
    h = np.tanh((x / np.linalg.norm(x, axis=1, keepdims=True)) @ w1.T + b1) @ w2.T + b2
    latent = h.shape[1] // 2
    mu, logvar = h[:, :latent], h[:, latent:]
    z = mu if eps is None else mu + eps * np.exp(0.5 * logvar)
    return np.tanh(z @ w3.T + b3) @ w4.T + b4, mu, logvar


@pytest.mark.parametrize("sample_std", [1.0, 0.01])  # the paper's eps ~ N(0, I); RecBole 1.2.1's N(0, 0.01² I)
def test_loss_matches_numpy_with_dropout_off(sample_std):
    m = MultiVAE(encoder_dims=[4, 2], dropout=0.0, beta_max=0.2, total_anneal_steps=10, sample_std=sample_std)
    m.build(TINY)
    m.step = 3  # beta = min(0.2, 3 / 10): the cap, 0.2
    m.train()
    users = torch.tensor([1, 0])
    x = TINY.to_csr().toarray()[[1, 0]].astype(np.float64)
    torch.manual_seed(7)
    got = m.loss((users,)).item()
    torch.manual_seed(7)
    eps = sample_std * torch.randn(2, 2).double().numpy()  # the draw the model makes for z
    logits, mu, logvar = _numpy_forward(m, x, eps)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    nll = -(logp * x).sum(1).mean()
    kl = (0.5 * (-logvar + np.exp(logvar) + mu**2 - 1)).sum(1).mean()
    assert got == pytest.approx(nll + 0.2 * kl, rel=1e-5)
    assert m.step == 4


def test_kl_weight_anneals_linearly_to_its_cap_and_counts_training_steps_only():
    m = MultiVAE(encoder_dims=[4, 2], beta_max=0.5, total_anneal_steps=4)
    m.build(TINY)
    m.train()
    betas = []
    for _ in range(5):
        betas.append(m.beta())
        m.loss((torch.tensor([0, 1]),))
    assert betas == [0.0, 0.25, 0.5, 0.5, 0.5]
    m.eval()
    m.loss((torch.tensor([0]),))
    assert m.step == 5
    assert MultiVAE(beta_max=0.3, total_anneal_steps=0).beta() == 0.3


def test_scores_are_the_decoded_mean_of_the_training_row():
    m = MultiVAE(encoder_dims=[4, 2], dropout=0.5)
    m.build(TINY)
    m.eval()
    with torch.no_grad():
        got = m.score(torch.tensor([0, 1, 2])).double().numpy()
        some = m.score(torch.tensor([1]), torch.tensor([4, 0])).double().numpy()
    expected = _numpy_forward(m, TINY.to_csr().toarray().astype(np.float64), None)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(some, expected[[1], [4, 0]][None], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[0], got[2])  # fold-in: same training row, same scores


def test_batches_are_users_of_the_configured_size():
    m = MultiVAE(users_per_batch=2)
    data = m.train_data(TINY, 2048, seed=0)
    assert isinstance(data, UserSampler) and data.batch_size == 2
    assert MultiVAE(users_per_batch=None).train_data(TINY, 64, 0).batch_size == 64
    with pytest.raises(ValueError, match="users_per_batch"):
        MultiVAE(users_per_batch=0)
    with pytest.raises(ValueError, match="dropout"):
        MultiVAE(dropout=1.0)


def test_learns_the_community_structure():
    model = MultiVAE(encoder_dims=[16, 4], users_per_batch=8, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    assert community_recall(model, epochs=60) > 0.75


@pytest.mark.slow
def test_ml100k_a_few_epochs_beat_pop_on_validation(ml100k, tmp_path):
    split = warm_split(ml100k, tmp_path)
    got, pop = val_ndcg_vs_pop(MultiVAE(users_per_batch=100), split, epochs=15)
    print(f"ML-100K val ndcg@20 MultiVAE {got:.4f} Pop {pop:.4f}")
    assert got > pop + 0.02, (got, pop)
