"""Shared fixtures: the real ML-100K folder (skipped only when absent and not required), tiny datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmbench.data.interactions import Dataset, Interactions, build_dataset

torch.set_num_threads(1)


def _data_dir() -> Path | None:
    d = os.environ.get("MMBENCH_DATA_DIR")
    if d and (Path(d) / "movielens" / "ml-100k" / "u.data").is_file():
        return Path(d).resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$MMBENCH_DATA_DIR``; a missing folder skips, or fails when ``MMBENCH_REQUIRE_DATA`` is set."""
    d = _data_dir()
    if d is None:
        msg = f"ML-100K not found under MMBENCH_DATA_DIR={os.environ.get('MMBENCH_DATA_DIR')!r}"
        if os.environ.get("MMBENCH_REQUIRE_DATA"):
            pytest.fail(msg + " and MMBENCH_REQUIRE_DATA is set")
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def ml100k(data_dir: Path) -> Dataset:
    from mmbench.data.ml100k import MovieLens100K

    return MovieLens100K(str(data_dir), download=False).read()


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    """``$MMBENCH_DATA_DIR`` when it holds ML-1M (the partial copy); skips or fails as :func:`data_dir`."""
    d = os.environ.get("MMBENCH_DATA_DIR")
    if d and (Path(d) / "movielens" / "ml-1m" / "ratings.dat").is_file():
        return Path(d).resolve()
    if os.environ.get("MMBENCH_REQUIRE_DATA"):
        pytest.fail(f"ML-1M not found under MMBENCH_DATA_DIR={d!r} and MMBENCH_REQUIRE_DATA is set")
    pytest.skip(f"ML-1M not found under MMBENCH_DATA_DIR={d!r}")


def make_interactions(
    pairs: list[tuple[int, int]], n_users: int, n_items: int, ratings: list[float] | None = None
) -> Interactions:
    u = np.array([p[0] for p in pairs], np.int64)
    i = np.array([p[1] for p in pairs], np.int64)
    r = np.ones(len(pairs), np.float32) if ratings is None else np.array(ratings, np.float32)
    return Interactions(u, i, r, np.arange(len(pairs), dtype=np.int64), n_users, n_items)


def make_dataset(
    users: list,
    items: list,
    ratings: list[float] | None = None,
    timestamps: list[int] | None = None,
    name: str = "tiny",
) -> Dataset:
    n = len(users)
    return build_dataset(
        name,
        np.array(users),
        np.array(items),
        np.ones(n, np.float32) if ratings is None else np.array(ratings, np.float32),
        np.arange(n, dtype=np.int64) if timestamps is None else np.array(timestamps, np.int64),
    )


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
