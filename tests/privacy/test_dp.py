import math
from functools import partial

import numpy as np
import pytest
import torch

from mmbench.config import ConfigError
from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.models.neural.bpr import BPR
from mmbench.models.neural.lightgcn import LightGCN
from mmbench.privacy.dp import UserLevelDP, UserPoissonSampler
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer
from tests.helpers.config import cfg_for
from tests.helpers.data import make_interactions


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    ds = Preprocess()(Synthetic(n_users=120, n_items=150, seed=0).read())
    return load_or_create(ds, RandomSplit(), tmp_path_factory.mktemp("splits"))


def tiny():
    """5 users with 1..5 events over 8 items, and a built BPR on them."""
    pairs = [(u, (u + k) % 8) for u in range(5) for k in range(u + 1)]
    train = make_interactions(pairs, 5, 8)
    torch.manual_seed(0)
    model = BPR(embedding_dim=4, reg=0.0, init_std=1.0)
    model.build(train)
    return train, model


def test_sampler_includes_each_user_with_probability_q_and_all_of_their_events(split):
    train = split.train
    sampler = UserPoissonSampler(train, 0.1, steps=400, seed=3)
    counts = np.bincount(train.users, minlength=train.n_users)
    seen = np.zeros(train.n_users)
    positives = set(zip(train.users.tolist(), train.items.tolist(), strict=True))
    for u, i, j, bounds in sampler:
        chosen = u[bounds[:-1]].numpy()
        assert len(np.unique(chosen)) == len(chosen)  # one block per user
        assert np.array_equal(np.diff(bounds.numpy()), counts[chosen])  # every event of a chosen user
        assert set(zip(u.tolist(), i.tolist(), strict=True)) <= positives
        assert not set(zip(u.tolist(), j.tolist(), strict=True)) & positives  # negatives are not positives
        seen[chosen] += 1
    active = counts > 0
    rate = seen[active].mean() / 400
    # 400 steps x ~120 users: the mean inclusion rate has a standard error below 0.0015
    assert rate == pytest.approx(0.1, abs=0.006)
    assert len(sampler) == 400


def test_per_user_gradients_are_each_users_own_loss_gradient():
    train, model = tiny()
    u, i, j, bounds = next(iter(UserPoissonSampler(train, 1.0, steps=1)))
    UserLevelDP().per_user_gradients(model, (u, i, j, bounds))
    params = list(model.parameters())
    for k in range(5):
        s, e = int(bounds[k]), int(bounds[k + 1])
        expected = torch.autograd.grad(model.loss((u[s:e], i[s:e], j[s:e])), params)
        for p, g in zip(params, expected, strict=True):
            assert torch.allclose(p.grad_sample[k], g, atol=1e-6)
        # user k's gradient touches user k's row of the user table and no other
        others = [r for r in range(5) if r != k]
        assert model.user_emb.weight.grad_sample[k][others].abs().sum() == 0


@pytest.mark.parametrize("clip", [1e-3, 1e3])
def test_clipping_bounds_each_users_gradient_norm(clip):
    """With the noise at zero, one step's gradient is sum_k g_k * min(1, C / |g_k|) / expected users: each user's
    contribution has norm min(|g_k|, C) (Opacus adds 1e-6 to the norm)."""
    train, model = tiny()
    model.optimizer = partial(torch.optim.SGD, lr=0.0)
    dp = UserLevelDP(target_epsilon=1.0, max_grad_norm=clip)
    dp.prepare(model, train, max_epochs=1)
    dp.noise_multiplier = 0.0
    (opt,) = dp.optimizers(model)
    u, i, j, bounds = next(iter(UserPoissonSampler(train, 1.0, steps=1)))
    params = list(model.parameters())
    for k in range(5):
        s, e = int(bounds[k]), int(bounds[k + 1])
        raw = torch.cat([g.ravel() for g in torch.autograd.grad(model.loss((u[s:e], i[s:e], j[s:e])), params)])
        opt.zero_grad()
        dp.per_user_gradients(model, (u[s:e], i[s:e], j[s:e], torch.tensor([0, e - s])))
        opt.step()
        got = torch.cat([p.grad.ravel() for p in params]) * opt.expected_batch_size
        assert got.norm().item() == pytest.approx(min(raw.norm().item(), clip), rel=1e-4)
        assert torch.allclose(got / got.norm(), raw / raw.norm(), atol=1e-5)  # clipping only rescales
    assert clip == 1e3 or raw.norm() > 10 * clip  # the small bound really clipped


def test_noise_has_std_sigma_times_the_bound_over_the_expected_users():
    train, model = tiny()
    dp = UserLevelDP(target_epsilon=1.0, max_grad_norm=0.5, batch_users=2)
    model.optimizer = partial(torch.optim.SGD, lr=0.0)
    dp.prepare(model, train, max_epochs=1)
    (opt,) = dp.optimizers(model)
    empty = tuple(torch.zeros(0, dtype=torch.int64) for _ in range(3)) + (torch.tensor([0]),)
    dp.per_user_gradients(model, empty)  # a step that sampled nobody: noise only
    opt.step()
    noise = torch.cat([p.grad.ravel() for p in model.parameters()])
    expected = dp.noise_multiplier * 0.5 / (dp.sample_rate * 5)
    assert dp.sample_rate == pytest.approx(2 / 5)
    assert noise.std().item() == pytest.approx(expected, rel=0.15)  # 52 draws
    assert dp.spent()["privacy/steps"] == 1


def test_scope_shared_leaves_each_users_own_rows_unclipped_and_unnoised():
    train, model = tiny()
    model.optimizer = partial(torch.optim.SGD, lr=0.0)
    dp = UserLevelDP(target_epsilon=1.0, max_grad_norm=1e-3, scope="shared")
    dp.prepare(model, train, max_epochs=1)
    dp_opt, own = dp.optimizers(model)
    assert [p for g in own.param_groups for p in g["params"]] == [model.user_emb.weight]
    assert [p for g in dp_opt.param_groups for p in g["params"]] == [model.item_emb.weight]
    batch = next(iter(UserPoissonSampler(train, 1.0, steps=1)))
    u, i, j, bounds = batch
    expected, clipped = torch.zeros_like(model.user_emb.weight), torch.zeros_like(model.item_emb.weight)
    for k in range(5):
        s, e = int(bounds[k]), int(bounds[k + 1])
        gu, gi = torch.autograd.grad(
            model.loss((u[s:e], i[s:e], j[s:e])), [model.user_emb.weight, model.item_emb.weight]
        )
        expected += gu
        clipped += gi * min(1.0, 1e-3 / gi.norm().item())  # the clipping norm is over the shared parameters only
    dp.per_user_gradients(model, batch)
    dp_opt.step()
    own.step()
    assert torch.allclose(model.user_emb.weight.grad, expected, atol=1e-6)  # each row its user's raw gradient
    noise = model.item_emb.weight.grad * 5 - clipped  # the shared table: clipped, summed, noised, / 5 users
    assert noise.std().item() == pytest.approx(dp.noise_multiplier * 1e-3, rel=0.3)  # 32 draws
    with pytest.raises(ValueError, match="privacy.scope='users'"):
        UserLevelDP(scope="users")


def test_the_accountants_epsilon_is_within_its_tolerance_of_the_target_after_training(split):
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    dp = UserLevelDP(target_epsilon=2.0, max_grad_norm=1.0, batch_users=16)
    model = BPR(embedding_dim=8)
    NeuralTrainer(max_epochs=3, enable_progress_bar=False).fit(model, split.train, privacy=dp)
    spent = dp.spent()
    n_users = len(np.unique(split.train.users))
    assert spent["privacy/delta"] == pytest.approx(1 / n_users)
    assert spent["privacy/steps"] == 3 * round(n_users / 16)
    # get_noise_multiplier's binary search stops within epsilon_tolerance=0.01 below the target
    assert 2.0 - 0.01 <= spent["privacy/epsilon"] <= 2.0
    # the same epsilon from Opacus's RDP analysis, computed directly from (q, sigma, steps)
    alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    steps = int(spent["privacy/steps"])
    rdp = compute_rdp(q=16 / n_users, noise_multiplier=dp.noise_multiplier, steps=steps, orders=alphas)
    assert spent["privacy/epsilon"] == pytest.approx(get_privacy_spent(orders=alphas, rdp=rdp, delta=1 / n_users)[0])


def test_more_noise_for_a_smaller_epsilon(split):
    sigma = {}
    for eps in (1.0, 8.0):
        dp = UserLevelDP(target_epsilon=eps)
        dp.prepare(BPR(), split.train, max_epochs=5)
        sigma[eps] = dp.noise_multiplier
    assert sigma[1.0] > 2 * sigma[8.0] > 0


def test_unsupported_models_and_typos_fail_before_training(split, tmp_path):
    from mmbench.pipeline import run

    with pytest.raises(ValueError, match="LightGCN is not supported by user-level DP-SGD"):
        NeuralTrainer(max_epochs=1).fit(LightGCN(), split.train, privacy=UserLevelDP())
    with pytest.raises(ValueError, match="model=lightgcn .* is not trained by user-level DP-SGD"):
        run(cfg_for(tmp_path, "model=lightgcn", "privacy=dp", "dataset.n_users=-1"))  # fails before reading data
    with pytest.raises(ValueError, match="model=itemknn"):
        run(cfg_for(tmp_path, "model=itemknn", "privacy=dp"))
    with pytest.raises(ConfigError, match="target_epsilonn"):
        run(cfg_for(tmp_path, "model=bpr", "privacy=dp", "+privacy.target_epsilonn=1"))
    with pytest.raises(ValueError, match="trainer.precision='16-mixed'"):
        NeuralTrainer(max_epochs=1, precision="16-mixed").fit(BPR(), split.train, privacy=UserLevelDP())
    with pytest.raises(ValueError, match="target_epsilon=0"):
        UserLevelDP(target_epsilon=0)
    # DDP: the accountant counts one process's sampling and noise
    with pytest.raises(ValueError, match="privacy=dp trains on one process.*trainer.devices=2"):
        run(cfg_for(tmp_path, "model=bpr", "privacy=dp", "trainer.devices=2", "dataset.n_users=-1"))
    with pytest.raises(ValueError, match="privacy=dp trains on one process.*trainer.devices=2"):
        NeuralTrainer(max_epochs=1, devices=2, strategy="ddp").fit(BPR(), split.train, privacy=UserLevelDP())


def test_graph_fusion_with_interaction_edges_is_refused(split):
    from mmbench.encoders.base import ModalityFeatures
    from mmbench.fusion.graph import GraphFusion
    from mmbench.models.multimodal.fusion_rec import FusionRec

    n = split.train.n_items
    feats = {"text": ModalityFeatures("text", np.ones(n, bool), np.eye(n, 4, dtype=np.float32))}
    model = FusionRec(fusion=GraphFusion(), embedding_dim=8)
    model.set_features(feats)
    with pytest.raises(ValueError, match="interaction_weight > 0"):
        NeuralTrainer(max_epochs=1).fit(model, split.train, privacy=UserLevelDP())
    assert not hasattr(model, "item_emb")  # refused before build
    model = FusionRec(fusion=GraphFusion(interaction_weight=0.0), embedding_dim=8)
    model.set_features(feats)
    UserLevelDP.check(model)  # content-only item graph: allowed


@pytest.mark.slow
def test_pipeline_logs_the_spent_epsilon_and_the_attack(tmp_path):
    from mmbench.pipeline import run

    r = run(cfg_for(tmp_path, "model=bpr", "privacy=dp", "privacy.target_epsilon=4", "trainer.max_epochs=2"))
    assert 0 < r.metrics["privacy/epsilon"] <= 4.0
    assert r.metrics["privacy/steps"] > 0 and not math.isnan(r.metrics["privacy/noise_multiplier"])
    assert 0 <= r.metrics["privacy/mia_auc"] <= 1 and r.metrics["privacy/mia_nonmembers"] > 0
    assert "train/loss" not in r.metrics
