"""NeuMF: a hand-computed forward on a tiny net, the vectorised all-items scoring against the pairwise forward, the
log loss against numpy, negatives from the project's sampler, learning that beats Pop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.data.sampling import PairwiseSampler
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.neumf import NeuMF
from mmbench.models.topn.pop import Pop
from mmbench.training import NeuralTrainer
from tests.helpers.data import make_interactions, two_communities
from tests.helpers.real_data import val_ndcg_vs_pop, warm_split

TINY = make_interactions([(0, 0), (0, 2), (1, 1), (1, 3), (2, 0), (2, 3)], 3, 4)


def _set(param: torch.nn.Parameter, values) -> None:
    with torch.no_grad():
        param.copy_(torch.tensor(values, dtype=torch.float32))


def tiny_net() -> NeuMF:
    """gmf_dim 1, mlp_layers [2, 1]: every weight set by hand."""
    m = NeuMF(gmf_dim=1, mlp_layers=[2, 1])
    m.build(TINY)
    _set(m.user_gmf.weight, [[1.0], [2.0], [-1.0]])
    _set(m.item_gmf.weight, [[0.5], [1.0], [-2.0], [3.0]])
    _set(m.user_mlp.weight, [[1.0], [-1.0], [0.5]])
    _set(m.item_mlp.weight, [[2.0], [1.0], [0.0], [-3.0]])
    _set(m.tower[0].weight, [[1.0, 1.0]])  # ReLU(P_u + Q_i + 0.5)
    _set(m.tower[0].bias, [0.5])
    _set(m.out.weight, [[2.0, -1.0]])  # 2·gmf - mlp + 0.25
    _set(m.out.bias, [0.25])
    return m


def test_forward_by_hand():
    m = tiny_net()
    # u=0, i=0: gmf 1·0.5 = 0.5; mlp ReLU(1 + 2 + 0.5) = 3.5; s = 2·0.5 - 3.5 + 0.25 = -2.25
    # u=1, i=3: gmf 2·3 = 6; mlp ReLU(-1 - 3 + 0.5) = 0; s = 12 + 0.25 = 12.25
    # u=2, i=2: gmf -1·-2 = 2; mlp ReLU(0.5 + 0 + 0.5) = 1; s = 4 - 1 + 0.25 = 3.25
    got = m(torch.tensor([0, 1, 2]), torch.tensor([0, 3, 2]))
    np.testing.assert_allclose(got.detach().numpy(), [-2.25, 12.25, 3.25], rtol=1e-6)


def test_all_items_scoring_equals_the_pairwise_forward():
    torch.manual_seed(0)
    m = NeuMF(gmf_dim=3, mlp_layers=[8, 4, 2])
    m.build(make_interactions([(u, (u * 7) % 11) for u in range(9)], 9, 11))
    users = torch.tensor([4, 0, 8, 4])
    with torch.no_grad():
        got = m.score(users)
        pairs = m(users[:, None].expand(-1, 11), torch.arange(11)[None, :].expand(4, -1))
        some = m.score(users, torch.tensor([10, 2]))
    torch.testing.assert_close(got, pairs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(some, pairs[:, [10, 2]], rtol=1e-5, atol=1e-6)


def test_log_loss_against_numpy_on_the_samplers_negatives():
    m = tiny_net()
    m.n_negatives = 2
    sampler = m.train_data(TINY, batch_size=6, seed=0)
    assert isinstance(sampler, PairwiseSampler) and sampler.n_negatives == 2
    u, i, j = next(iter(sampler))
    assert j.shape == (6, 2)
    with torch.no_grad():
        pos = m(u, i).double().numpy()
        neg = m(u[:, None].expand(-1, 2), j).double().numpy()
        got = m.loss((u, i, j)).item()
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = -(np.log(sig(pos)).sum() + np.log(1 - sig(neg)).sum()) / (6 * 3)
    assert got == pytest.approx(expected, rel=1e-5)
    m.reg = 0.5
    with torch.no_grad():
        reg = sum(
            e.pow(2).sum()
            for e in (
                m.user_gmf(u),
                m.user_mlp(u),
                m.item_gmf(torch.cat([i[:, None], j], 1)),
                m.item_mlp(torch.cat([i[:, None], j], 1)),
            )
        ).item()
        assert m.loss((u, i, j)).item() == pytest.approx(expected + 0.5 * reg / 6, rel=1e-5)


def test_bad_arguments():
    for bad in ({"mlp_layers": [7, 4]}, {"mlp_layers": [8]}, {"gmf_dim": 0}, {"n_negatives": 0}, {"reg": -1.0}):
        with pytest.raises(ValueError, match="model"):
            NeuMF(**bad)


def test_learns_the_community_structure_and_beats_pop():
    train, held = two_communities()
    torch.manual_seed(0)
    model = NeuMF(gmf_dim=8, mlp_layers=[16, 8], optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    NeuralTrainer(max_epochs=40, batch_size=64, enable_progress_bar=False).fit(model, train, None, Evaluator())
    ev = Evaluator(ks=[3], metrics=["recall"], progress=False)
    got = ev.evaluate(model, held, [train]).means["recall@3"]
    pop = ev.evaluate(Pop().fit(train), held, [train]).means["recall@3"]
    assert got > 0.75 and got > pop + 0.3, (got, pop)  # random ranking gives 3/13 ~ 0.23


@pytest.mark.slow
def test_ml100k_a_few_epochs_beat_pop_on_validation(ml100k, tmp_path):
    split = warm_split(ml100k, tmp_path)
    got, pop = val_ndcg_vs_pop(NeuMF(), split, epochs=8, batch_size=1024)
    print(f"ML-100K val ndcg@20 NeuMF {got:.4f} Pop {pop:.4f}")
    assert got > pop + 0.02, (got, pop)
