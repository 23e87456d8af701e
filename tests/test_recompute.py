"""Done-criterion of the foundation: Pop and ItemKNN metrics on ML-100K recomputed from the artifacts alone
by an independent script match the logged values to 1e-6 (also the sparse-user bucket)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.config import compose
from mmbench.evaluation.metrics import metric_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", ["pop", "itemknn"])
def test_logged_metrics_match_independent_recomputation(model, data_dir, tmp_path):
    cfg = compose(
        [
            f"paths.work_dir={tmp_path}",
            f"paths.data_dir={data_dir}",
            f"model={model}",
            "eval.progress=false",
            f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        ]
    )
    res = pipeline.run(cfg)
    logged = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.metrics
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "recompute_metrics.py"), urlparse(res.artifact_uri).path],
        capture_output=True,
        text=True,
        check=True,
    )
    recomputed = json.loads(out.stdout)
    assert len(recomputed) == 24  # 6 metrics x 2 K, over all users and over the sparse users
    for key, value in recomputed.items():
        assert logged[metric_key(f"test/{key}")] == pytest.approx(value, abs=1e-6), key
