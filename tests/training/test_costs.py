"""Compute cost: FLOPs against hand counts, the model left untouched by the measurement, fit-stage memory, codecarbon
energy offline, and the pipeline's cost metrics and tags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from mmbench import pipeline
from mmbench.data.graph import sparse_mm, to_torch
from mmbench.models.base import NeuralRecommender
from mmbench.models.neural.bpr import BPR
from mmbench.models.neural.multivae import MultiVAE
from mmbench.training.costs import FitMeter, count_flops, flop_costs, score_flops, train_step_flops
from tests.helpers.config import cfg_for
from tests.helpers.data import make_interactions

TRAIN = make_interactions([(u, (3 * u + k) % 9) for u in range(6) for k in range(3)], 6, 9)


class OneLinear(NeuralRecommender):
    """A single ``Linear(n_in, n_out)`` whose loss is the sum of its outputs on a fixed batch of ``b`` inputs."""

    def __init__(self, n_in: int = 7, n_out: int = 3, b: int = 5) -> None:
        super().__init__()
        self.n_in, self.n_out, self.b = n_in, n_out, b

    def build(self, train):
        self.lin = nn.Linear(self.n_in, self.n_out)
        self.calls = 0

    def train_data(self, train, batch_size, seed):
        return [(torch.randn(self.b, self.n_in),)] * 4  # four batches an epoch

    def loss(self, batch):
        self.calls += 1
        return self.lin(batch[0]).sum()

    def score(self, users, items=None):
        return self.lin(torch.ones(len(users), self.n_in))


def test_linear_layer_flops_are_the_analytic_count():
    lin = nn.Linear(7, 3)
    assert count_flops(lambda: lin(torch.randn(5, 7))) == 2 * 7 * 3 * 5
    assert count_flops(lambda: nn.Linear(7, 3, bias=False)(torch.randn(5, 7))) == 2 * 7 * 3 * 5


def test_a_training_step_counts_forward_and_backward_and_leaves_the_model_as_it_was():
    m = OneLinear()
    m.build(TRAIN)
    m.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    # forward: 2·b·in·out (addmm) + b·out (sum); backward (the input needs no gradient): the weight's gradient
    # 2·b·in·out (mm), the bias's b·out (sum over the batch)
    assert train_step_flops(m, TRAIN, batch_size=5, seed=0) == 4 * 5 * 7 * 3 + 2 * 5 * 3
    assert m.calls == 0 and not m.training  # plain attributes and the mode restored
    assert all(p.grad is None for p in m.parameters())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    metrics, tags = flop_costs(m, TRAIN, batch_size=5, seed=0, epochs=3)
    assert metrics["cost/train_flops"] == metrics["cost/train_step_flops"] * 4 * 3  # x batches per epoch x epochs
    assert metrics["cost/score_1k_flops"] == 2 * 7 * 3 * 1000
    assert "FlopCounterMode" in tags["costs.flops_method"]


def test_embedding_dot_product_scoring_and_the_bpr_step_written_element_wise():
    m = BPR(embedding_dim=4)
    m.build(TRAIN)
    # 1,000 users (ids cycle over the 6) x 9 items, a 4-dim dot product each: 2 FLOPs per multiply-add
    assert score_flops(m, TRAIN.n_users) == 2 * 1000 * 9 * 4
    u, i, j = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    # the same products as (p * q).sum(-1): mul and sum, b·d each
    pu, qi = m.user_emb(u).detach(), m.item_emb(i).detach()
    assert count_flops(lambda: (pu * qi).sum(-1)) == 2 * 2 * 4
    # BPR's forward: qi - qj, pu * (.), sum (3·b·d); three squares and their sums (6·b·d); the two additions of the
    # squared norms, /2, reg·, +, mean (6·b); logsigmoid and negation are not counted
    with torch.no_grad():
        assert count_flops(lambda: m.loss((u, i, j))) == 9 * 2 * 4 + 6 * 2


def test_sparse_propagation_counts_stored_entries():
    a = sp.random(30, 30, density=0.1, random_state=0, format="csr")
    a = (a + a.T).tocsr()
    x = torch.randn(30, 4, requires_grad=True)
    adj = to_torch(a)
    # forward and backward are one sparse product each (2·nnz·d), and the sum reads 30·4 elements
    assert count_flops(lambda: sparse_mm(adj, x).sum().backward()) == 2 * (2 * a.nnz * 4) + 30 * 4


def test_multivae_step_restores_its_anneal_counter_and_random_state():
    m = MultiVAE(encoder_dims=[4, 2])
    m.build(TRAIN)
    m.step = 7
    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    flops = train_step_flops(m, TRAIN, batch_size=6, seed=0)
    assert torch.equal(torch.rand(1), expected) and m.step == 7
    # at least the four Linear layers' forward matmuls on the 6 users' rows: 9->4, 4->4 (mu, logvar), 2->4, 4->9
    assert flops > 2 * 6 * (9 * 4 + 4 * 4 + 2 * 4 + 4 * 9)


def test_models_that_are_not_torch_modules_have_no_flops():
    from mmbench.models.topn.ease import EASE

    metrics, tags = flop_costs(EASE().fit(TRAIN), TRAIN, batch_size=5, seed=0, epochs=None)
    assert metrics == {} and tags["costs.flops_method"].startswith("absent: EASE is not a torch model")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the fit-stage peak is read from /proc")
def test_fit_meter_peak_is_the_fit_stages_own():
    before = np.ones(40 * 2**20 // 8)  # 40 MB touched before the fit stage: not its peak
    del before
    meter = FitMeter()
    with meter.measure():
        a = np.ones(64 * 2**20 // 8)  # 64 MB allocated and touched during the fit stage
        del a
    assert 60 <= meter.metrics["memory/fit_rss_delta_mb"] < 100
    assert meter.metrics["memory/fit_peak_rss_mb"] >= meter.metrics["memory/fit_rss_delta_mb"]
    assert meter.peak_rss_mb() >= meter.metrics["memory/fit_peak_rss_mb"]
    assert "VmHWM" in meter.tags["costs.memory_method"]


def test_energy_is_measured_offline_and_its_method_tagged(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network used in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    meter = FitMeter(energy=True, country_iso_code="FRA")
    with meter.measure():
        sum(i * i for i in range(300_000))
    m = meter.metrics
    assert m["energy/fit_kwh"] > 0
    assert m["energy/fit_kwh"] == pytest.approx(
        m["energy/fit_cpu_kwh"] + m["energy/fit_ram_kwh"] + m["energy/fit_gpu_kwh"]
    )
    assert m["energy/fit_co2_kg"] > 0 and meter.tags["costs.energy_country"] == "FRA"
    method = meter.tags["costs.energy_method"]
    assert method.startswith("codecarbon ") and "offline" in method and "CPU:" in method and "RAM:" in method


def test_warm_up_detects_the_hardware_once_in_the_background_and_measure_uses_it(monkeypatch):
    from codecarbon.core import hardware_cache, resource_tracker

    hardware_cache.clear_cache()
    setups = []
    real = resource_tracker.ResourceTracker._run_full_hardware_setup
    monkeypatch.setattr(
        resource_tracker.ResourceTracker, "_run_full_hardware_setup", lambda self: setups.append(1) or real(self)
    )
    meter = FitMeter(energy=True)
    meter.warm_up()
    meter.warm_up()  # one detection, however often it is asked
    meter._warm.join()
    assert setups == [1] and meter._warm.name == "codecarbon-warm-up"
    with meter.measure():
        sum(i * i for i in range(100_000))
    assert setups == [1]  # the fit's tracker took the cached detection
    assert meter.metrics["energy/fit_kwh"] > 0 and "CPU:" in meter.tags["costs.energy_method"]
    off = FitMeter(energy=False)
    off.warm_up()
    assert off._warm is None


def test_pipeline_logs_the_costs_of_a_neural_run_and_none_when_switched_off(tmp_path):
    res = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=2", "trainer.batch_size=1024"))
    m = res.metrics
    n_users, n_items = res.split.train.n_users, res.split.train.n_items
    assert m["model/n_params"] == (n_users + n_items) * 64  # the two embedding tables, counted independently
    assert m["cost/score_1k_flops"] == 2 * 1000 * 64 * n_items
    batches = -(-len(res.split.train) // 1024)
    assert m["cost/train_flops"] == m["cost/train_step_flops"] * batches * m["fit/epochs"] > 0
    assert m["memory/fit_peak_rss_mb"] > 0 and m["energy/fit_kwh"] > 0
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.tags
    assert "FlopCounterMode" in tags["costs.flops_method"] and "costs.memory_method" in tags
    assert tags["costs.energy_method"].startswith("codecarbon") and tags["costs.energy_country"] == "USA"
    off = pipeline.run(
        cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=1", "costs.flops=false", "costs.energy=false")
    )
    assert not [k for k in off.metrics if k.startswith(("cost/", "energy/"))]
    assert off.metrics["model/n_params"] == m["model/n_params"]  # the parameter count is always logged
