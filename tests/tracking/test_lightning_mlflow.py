"""BufferedMLFlowLogger: per-epoch rows wait for flush_s, go in MLflow-sized batches, and reach the store at the end
of training, a failed one included, with the keys, steps and values the unbuffered logger writes."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
from mlflow.tracking import MlflowClient

from mmbench.data.preprocess import Preprocess
from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.tracking.lightning_mlflow import BufferedMLFlowLogger
from mmbench.training import NeuralTrainer


@pytest.fixture
def store(tmp_path) -> tuple[str, MlflowClient, str]:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("buffered")).info.run_id
    return uri, client, run_id


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_rows_wait_for_flush_s_and_all_reach_the_store_at_finalize(store):
    uri, client, run_id = store
    logger = BufferedMLFlowLogger(uri, run_id, flush_s=3600)
    for epoch in range(3):
        logger.log_metrics({"val/ndcg@10": 0.25 * epoch, "epoch": epoch}, step=10 * epoch)
    assert history(client, run_id, "val/ndcg_at_10") == []  # kept, not sent
    logger.finalize("success")
    assert history(client, run_id, "val/ndcg_at_10") == [(0, 0.0), (10, 0.25), (20, 0.5)]
    assert history(client, run_id, "epoch") == [(0, 0.0), (10, 1.0), (20, 2.0)]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_flush_s_zero_sends_every_call_at_once(store):
    uri, client, run_id = store
    logger = BufferedMLFlowLogger(uri, run_id, flush_s=0)
    logger.log_metrics({"train/loss": 0.5}, step=3)
    assert history(client, run_id, "train/loss") == [(3, 0.5)]


def test_rows_over_mlflows_limit_go_in_several_batches(store, monkeypatch):
    uri, client, run_id = store
    logger = BufferedMLFlowLogger(uri, run_id, flush_s=3600)
    sizes: list[int] = []
    log_batch = logger.experiment.log_batch

    def counted(**kw):
        sizes.append(len(kw["metrics"]))
        return log_batch(**kw)

    monkeypatch.setattr(logger.experiment, "log_batch", counted)
    for step in range(25):
        logger.log_metrics({f"m{j}": float(step * 100 + j) for j in range(100)}, step=step)
    logger.send()
    assert sizes == [1000, 1000, 500]
    assert history(client, run_id, "m7") == [(s, float(s * 100 + 7)) for s in range(25)]


class StopAfter(pl.Callback):
    """Fails the fit at the end of epoch ``epoch``'s validation."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("stop")


def test_a_failed_fit_still_writes_the_epochs_it_ran(store, tmp_path):
    uri, client, run_id = store
    ds = Preprocess()(Synthetic(n_users=60, n_items=80, seed=0).read())
    split = load_or_create(ds, RandomSplit(), tmp_path / "splits")
    trainer = NeuralTrainer(max_epochs=5, batch_size=256, enable_progress_bar=False, monitor="ndcg@10")
    logger = BufferedMLFlowLogger(uri, run_id, flush_s=3600)
    with pytest.raises(RuntimeError, match="stop"):
        ev = Evaluator(ks=[10], progress=False)
        trainer.fit(BPR(embedding_dim=4), split.train, split.val, ev, logger, [StopAfter(2)])
    # epochs 0 and 1 finished their validation; epoch 2 failed inside it. Lightning's step is its count of
    # training_step calls: one per epoch here (an epoch's batches fit one call of trainer.batches_per_call)
    assert [step for step, _ in history(client, run_id, "val/ndcg_at_10")] == [0, 1]
    assert client.get_run(run_id).info.status == "FAILED"
