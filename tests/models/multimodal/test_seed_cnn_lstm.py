"""The seed model: forward shapes, one prediction per item for everyone, the personal variant differs by user."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features
from mmbench.encoders.image import SeedCNN
from mmbench.encoders.text import LSTMEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.multimodal.seed_cnn_lstm import SeedCNNLSTM, SeedCNNLSTMPersonal
from mmbench.training import NeuralTrainer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ds = Synthetic(n_users=20, n_items=30, interactions_per_user=5).read()
    encs = {"image": SeedCNN(image_size=16, out_dim=None), "text": LSTMEncoder(vocab_size=100, max_len=8)}
    feats, _, _ = build_features(encs, ds, tmp_path_factory.mktemp("cache"))
    return ds, feats


def test_forward_shapes_and_same_ranking_for_everyone(setup):
    ds, feats = setup
    m = SeedCNNLSTM()
    m.set_features(feats)
    m.build(ds.interactions)
    assert m.content_dim == 32 * 7 * 7 + 128  # flattened 16x16 conv map + LSTM(128), as in the seed
    assert m.dense.in_features == m.content_dim and m.dense.out_features == 1
    p = m.predict(torch.tensor([0, 1, 2]), torch.tensor([4, 4, 5]))
    assert p.shape == (3,) and torch.allclose(p[0], p[1])
    s = m.score(torch.tensor([0, 3]))
    assert s.shape == (2, 30) and torch.equal(s[0], s[1])


def test_trains_on_ratings_and_reports_rmse(setup):
    ds, feats = setup
    m = SeedCNNLSTM()
    m.set_features(feats)
    NeuralTrainer(max_epochs=2, batch_size=32, enable_progress_bar=False).fit(
        m, ds.interactions, None, Evaluator(progress=False)
    )
    r = Evaluator(ks=[5], metrics=["ndcg"], progress=False).evaluate(m, ds.interactions)
    assert np.isfinite(r.means["rmse"]) and r.means["rmse"] < 3.0


def test_personal_variant_differs_by_user(setup):
    ds, feats = setup
    m = SeedCNNLSTMPersonal(embedding_dim=4)
    m.set_features(feats)
    m.build(ds.interactions)
    s = m.score(torch.tensor([0, 3]))
    assert s.shape == (2, 30) and not torch.allclose(s[0] - s[0].mean(), s[1] - s[1].mean())
    items = torch.tensor([2, 7])
    assert torch.allclose(m.estimate(torch.tensor([3, 3]), items), s[1, items], atol=1e-5)
    # predict: the estimate clipped to the training scale (1-5 on the synthetic data)
    assert torch.equal(m.predict(torch.tensor([3, 3]), items), s[1, items].clamp(1, 5))


def test_implicit_data_is_refused(setup):
    ds, feats = setup
    from tests.helpers.data import make_interactions

    m = SeedCNNLSTM()
    m.set_features(feats)
    with pytest.raises(ValueError, match="implicit"):
        m.build(make_interactions([(0, 1)], 20, 30))


@pytest.mark.parametrize("cls", [SeedCNNLSTM, SeedCNNLSTMPersonal])
def test_distinct_item_batches_give_the_per_event_loss_and_gradients(setup, cls):
    ds, feats = setup
    m = cls()
    m.set_features(feats)
    m.build(ds.interactions)
    u, i = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([4, 4, 5, 4, 5])  # items repeat, as in real batches
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    m.loss((u, i, r)).backward()
    fast = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    per_event = torch.cat([m.item_terms(i[k : k + 1]) for k in range(len(i))])  # no deduplication
    pred = per_event[:, 0]
    if cls is SeedCNNLSTMPersonal:
        pred = pred + m.user_bias(u).squeeze(-1) + (m.user_emb(u) * per_event[:, 1:]).sum(-1)
        reg = m.reg * (m.user_emb(u).pow(2).sum(-1) + m.item_emb(i).pow(2).sum(-1)).mean()
    else:
        reg = 0.0
    (torch.nn.functional.mse_loss(pred, r) + reg).backward()
    for a, p in zip(fast, m.parameters(), strict=True):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_scoring_table_is_cached_until_the_weights_change(setup):
    ds, feats = setup
    m = SeedCNNLSTMPersonal(embedding_dim=4)
    m.set_features(feats)
    m.build(ds.interactions)
    users = torch.tensor([0, 3])
    with torch.no_grad():
        s1 = m.score(users)
        table = m.item_table()
        assert m.item_table() is table  # no recomputation between calls
        with torch.enable_grad():
            direct = m.item_terms(torch.arange(30))
        assert torch.allclose(table, direct, atol=1e-6)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    m.loss((torch.tensor([0, 3]), torch.tensor([1, 2]), torch.tensor([5.0, 1.0]))).backward()
    opt.step()
    with torch.no_grad():
        s2 = m.score(users)
        assert m.item_table() is not table and not torch.allclose(s1, s2)
        assert torch.allclose(m.estimate(torch.tensor([3]), torch.tensor([7])), s2[1, 7:8], atol=1e-5)
