"""Rating models through the pipeline and the CLI: k-fold without validation, RMSE / MAE logged, ranking too,
implicit-only data refused, and `mmbench experiment=surprise_ml100k` writing its table."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.config import compose
from tests.helpers.cli import run_cli


def cfg_for(tmp_path, data_dir, *overrides):
    return compose(
        [
            f"paths.work_dir={tmp_path}",
            f"paths.data_dir={data_dir}",
            f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "eval.progress=false",
            *overrides,
        ]
    )


def test_rating_model_on_a_kfold_split_logs_rmse_and_ranks(tmp_path, data_dir):
    res = pipeline.run(cfg_for(tmp_path, data_dir, "split=kfold", "split.fold=1", "model=baseline_only"))
    m = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.metrics
    assert 0.92 < m["test/rmse"] < 0.97 and 0.72 < m["test/mae"] < 0.77
    assert m["test/n_users"] > 900 and 0 <= m["test/ndcg_at_10"] <= 1  # it ranks all items too
    assert m["val/n_users"] == 0 and math.isnan(res.metrics.get("val/ndcg@10", float("nan")))
    assert len(res.split.val) == 0 and len(res.split.test) == 20000


def test_rating_model_on_implicit_data_fails_clearly(tmp_path, data_dir):
    with pytest.raises(ValueError, match="implicit-only data"):
        pipeline.run(cfg_for(tmp_path, data_dir, "preprocess=implicit4", "model=svd"))


@pytest.mark.slow
def test_surprise_experiment_runs_the_grid_and_writes_the_table(tmp_path, data_dir):
    args = [
        sys.executable,
        "-m",
        "mmbench",
        "experiment=surprise_ml100k",
        "model=baseline_only,slope_one",
        "split.fold=0,1",
    ]
    try:
        run_cli(args, tmp_path, data_dir)
    except subprocess.CalledProcessError as e:
        raise AssertionError(e.stderr[-3000:]) from e
    out = tmp_path / "results" / "surprise_ml100k"
    table = pd.read_csv(out / "table.csv").set_index("model")
    assert table.loc["baseline_only", "folds"] == 2 and table.loc["slope_one", "folds"] == 2
    assert table.loc["svd", "folds"] == 0  # not in this reduced grid
    assert abs(table.loc["baseline_only", "rmse_mean"] - 0.944) < 0.01
    readme = (out / "README.md").read_text()
    assert "| Baseline | " in readme and "mmbench experiment=surprise_ml100k" in readme
    runs = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_experiment_by_name("surprise_ml100k").experiment_id]
    )
    assert len(runs) == 4 and len({r.data.tags["sweep_id"] for r in runs}) == 1
    assert {"test/rmse", "test/mae", "time/fit_s", "time/eval_test_s"} <= set(runs[0].data.metrics)
    assert not any("ndcg" in k or "recall" in k for k in runs[0].data.metrics)  # eval=rating: nothing ranked
    assert not any("mmbench.model_uri" in r.data.tags for r in runs)  # no pyfunc model per run in this table
    assert (tmp_path / "multirun").is_dir() and list((tmp_path / "multirun").rglob("multirun.yaml"))
    assert not list((tmp_path / "multirun").rglob(".hydra/config.yaml"))  # the config is each run's artifact
