"""Multi-device training (Lightning DDP) on CPU with gloo: ``trainer.devices=2`` against ``trainer.devices=1``.

A DDP run is one MLflow run (rank 0's), its validation is computed over every validation user once (equal, to 1e-6,
to one process evaluating the same weights), and its test metrics are comparable to one process's."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from mmbench.config import ConfigError
from mmbench.pipeline import run
from mmbench.training.distributed import RankGroup, weights_digest
from tests.helpers.config import cfg_for

TINY = ["dataset.n_users=120", "dataset.n_items=150", "dataset.interactions_per_user=15", "dataset.image_size=8"]
MODELS = {
    "bpr": ["model=bpr", "model.optimizer.lr=0.05", "model.embedding_dim=16"],
    "fusion_rec": ["model=fusion_rec", "+encoder@encoders.text=tfidf", "model.embedding_dim=16"],
}
# Test metrics of the two runs may differ by float rounding of the averaged gradients (the processes' shards of a
# batch make up the single-process batch) and, with dropout (0 in conf/fusion/early.yaml), by the rows' draws.
# Measured on this data: no difference at all (identical to the last digit) for either model.
TEST_TOLERANCE = 0.005  # absolute, on test/ndcg@20 and test/recall@20 (values about 0.13-0.29 here)


def _runs(tracking_uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_processes_make_one_run_validated_as_one_process(tmp_path, model):
    from mlflow.tracking import MlflowClient

    common = [
        *TINY,
        *MODELS[model],
        "trainer.max_epochs=4",
        "trainer.batch_size=256",
        "callbacks.early_stopping.patience=2",
        "eval.ks=[10,20]",
        "eval.metrics=[ndcg,recall]",
    ]
    one = run(cfg_for(tmp_path, *common, "experiment_name=one"))
    two = run(cfg_for(tmp_path, *common, "experiment_name=two", "trainer.devices=2", "trainer.strategy=ddp"))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runs = _runs(uri)
    assert len(runs) == 2 and {r.info.run_id for r in runs} == {one.run_id, two.run_id}  # one run per command
    assert (one.metrics["fit/processes"], two.metrics["fit/processes"]) == (1.0, 2.0)
    client = MlflowClient(uri)
    for res in (one, two):
        # the validation computed during training (DDP: gathered from both processes) at the restored best epoch
        # equals one process evaluating the restored weights after training (the run's val metrics)
        assert res.metrics["fit/best_val_monitor"] == pytest.approx(res.metrics["val/ndcg@10"], abs=1e-6)
        epoch_of_step = {m.step: m.value for m in client.get_metric_history(res.run_id, "epoch")}
        best = res.metrics["fit/best_epoch"]
        for key in ("ndcg@10", "ndcg@20", "recall@10", "recall@20"):
            history = client.get_metric_history(res.run_id, f"val/{key.replace('@', '_at_')}")
            at_best = [m.value for m in history if m.step > 0 and epoch_of_step.get(m.step) == best]
            assert len(at_best) == 1 and at_best[0] == pytest.approx(res.metrics[f"val/{key}"], abs=1e-6), key
        assert res.metrics["val/n_users"] == one.metrics["val/n_users"]
    for key in ("test/ndcg@20", "test/recall@20"):
        assert abs(two.metrics[key] - one.metrics[key]) <= TEST_TOLERANCE, key
    assert two.metrics["test/n_users"] == one.metrics["test/n_users"]


def test_spawning_strategies_and_missing_gpus_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="trainer.strategy='ddp_spawn' is not supported: its processes receive"):
        run(cfg_for(tmp_path, "model=bpr", "trainer.devices=2", "trainer.strategy=ddp_spawn"))
    if torch.cuda.device_count() < 3:
        with pytest.raises(ConfigError, match=r"trainer.devices=3 asks for 3 GPUs; this machine has \d"):
            run(cfg_for(tmp_path, "model=bpr", "trainer=gpu", "trainer.devices=3"))
    assert not (tmp_path / "mlflow.db").exists()  # no run was opened


def test_a_rank_that_fails_before_training_fails_the_group_and_restores_the_environment():
    before = {k: os.environ.get(k) for k in ("LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT")}
    with pytest.raises(RuntimeError, match="DDP rank 1 exited with code 3 before training"):
        with RankGroup(2, [sys.executable, "-c", "raise SystemExit(3)"]):
            pass
    assert {k: os.environ.get(k) for k in before} == before


def test_weights_digest_tells_equal_weights_from_different():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        b.weight[1, 2] = float(np.nextafter(np.float32(b.weight[1, 2].item()), np.float32(1)))  # one float32 step
    assert weights_digest(a) != weights_digest(b)
