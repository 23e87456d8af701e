"""MLflowTracker: params and tags wait for the metrics and go in the same log_batch calls (MLflow's limits kept)."""

from __future__ import annotations

import math

import pytest
from mlflow.tracking import MlflowClient

from mmbench.tracking import MLflowTracker


@pytest.mark.parametrize("n_params, n_tags, n_metrics", [(3, 2, 5), (250, 130, 1500)])
def test_params_tags_and_metrics_are_batched(tmp_path, monkeypatch, n_params, n_tags, n_metrics):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = MLflowTracker(uri, "exp")
    t.start("r", {"given": "at start"})
    calls = []
    original = MlflowClient.log_batch

    def counting(self, run_id, metrics=(), params=(), tags=(), **kw):
        calls.append((len(metrics), len(params), len(tags)))
        return original(self, run_id, metrics=metrics, params=params, tags=tags, **kw)

    monkeypatch.setattr(MlflowClient, "log_batch", counting)
    t.log_params({f"p{i}": i for i in range(n_params)})
    t.set_tags({f"t{i}": i for i in range(n_tags)})
    t.set_tags({"t0": "replaced"})
    assert calls == []  # nothing sent before the metrics
    t.log_metrics({f"m{i}": float(i) for i in range(n_metrics)})
    t.end()
    # as few calls as the limits allow: 100 params, 100 tags, 1000 entities per call
    assert len(calls) == max(math.ceil(n_params / 100), math.ceil(n_tags / 100), math.ceil(n_metrics / 1000))
    assert all(p <= 100 and g <= 100 and m + p + g <= 1000 for m, p, g in calls)
    run = MlflowClient(uri).get_run(t.run_id)
    assert len(run.data.params) == n_params and len(run.data.metrics) == n_metrics
    assert run.data.tags["t0"] == "replaced" and run.data.tags["given"] == "at start"
    assert sum(k.startswith("t") and k[1:].isdigit() for k in run.data.tags) == n_tags
    assert t.artifact_uri == run.info.artifact_uri


def test_waiting_params_are_logged_when_a_run_fails(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    t = MLflowTracker(uri, "exp")
    t.start("r")
    t.log_params({"model.k": 3})
    t.end("FAILED")
    run = MlflowClient(uri).get_run(t.run_id)
    assert run.data.params == {"model.k": "3"} and run.info.status == "FAILED"
