"""An MLflow tracking server that does not answer fails a run, and a search, at start with its URI named: one
request, no retries, before any data is read or any study is created. (Runs logged through a running server from
two processes at once, and read back by ``mmbench-table``: ``tests/test_search_workers.py``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmbench import pipeline
from mmbench.tracking import TrackingError, mlflow_tracker
from tests.helpers.config import cfg_for
from tests.helpers.services import free_port

BIN = Path(sys.executable).parent / "mmbench"


def test_an_unreachable_server_fails_the_run_before_any_work(tmp_path, monkeypatch):
    from mmbench.data.synthetic import Synthetic

    def must_not_run(self):
        raise AssertionError("data was loaded before the tracking server was checked")

    def no_client(*args, **kwargs):
        raise AssertionError("an MLflow client was made (its requests retry for seconds) before the server was checked")

    monkeypatch.setattr(Synthetic, "read", must_not_run)
    monkeypatch.setattr(mlflow_tracker, "MlflowClient", no_client)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = cfg_for(tmp_path, "model=bpr", f"logger.tracking_uri={url}")
    with pytest.raises(TrackingError, match=f"MLflow tracking server {url} is unreachable .*refused"):
        pipeline.run(cfg)


@pytest.mark.slow
def test_an_unreachable_server_fails_a_search_before_its_study(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "MMBENCH_WORK_DIR"} | {"MLFLOW_TRACKING_URI": url}
    args = [str(BIN), "-m", "hparams_search=bpr_optuna", "dataset=synthetic", "hydra.sweeper.n_trials=2"]
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert f"MLflow tracking server {url} is unreachable" in r.stderr, r.stderr[-3000:]
    assert not (tmp_path / "optuna.db").exists()  # the study was never created, no trial ran
    assert not (tmp_path / "splits").exists()
