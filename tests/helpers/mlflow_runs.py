"""Runs written straight into a real MLflow store, for the readers of runs (tables, experiment drivers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def log_mlflow_run(
    tracking_uri: str,
    experiment: str,
    tags: dict[str, str],
    metrics: dict[str, float],
    start_time: int,
    per_user: pd.DataFrame | None = None,
    params: dict[str, str] | None = None,
    status: str = "FINISHED",
) -> str:
    """A run in a real MLflow store (artifacts beside the SQLite file): tags, params, metrics (``@`` keys are
    logged as MLflow names them), ``per_user`` as ``metrics/per_user_test.tsv``; returns its id."""
    from mlflow.tracking import MlflowClient

    from mmbench.evaluation.metrics import metric_key

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    art = Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifact_location=art.as_uri())
    run = client.create_run(exp_id, start_time=start_time, tags=tags)
    rid = run.info.run_id
    for k, v in (params or {}).items():
        client.log_param(rid, k, v)
    for k, v in metrics.items():
        client.log_metric(rid, metric_key(k), v)
    if per_user is not None:
        folder = art / "staging" / rid
        folder.mkdir(parents=True)
        per_user.to_csv(folder / "per_user_test.tsv", sep="\t", index=False)
        client.log_artifact(rid, str(folder / "per_user_test.tsv"), "metrics")
    client.set_terminated(rid, status)
    return rid
