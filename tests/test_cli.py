"""End to end: `mmbench` and `python -m mmbench` as a user runs them, on ML-100K, into the default store."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.cli import run_cli

BIN = Path(sys.executable).parent / "mmbench"


@pytest.mark.slow
def test_mmbench_runs_are_recorded_in_the_default_store(tmp_path, data_dir):
    out = run_cli([str(BIN), "model=bpr", "trainer.max_epochs=2"], tmp_path, data_dir).stdout
    assert "ndcg@10" in out and "MLflow run id:" in out
    out2 = run_cli([sys.executable, "-m", "mmbench", "model=pop"], tmp_path, data_dir).stdout
    ids = [line.split(": ")[1] for o in (out, out2) for line in o.splitlines() if line.startswith("MLflow run id")]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = [client.get_run(i) for i in ids]
    assert [r.data.tags["model"] for r in runs] == ["bpr", "pop"]
    assert runs[0].data.tags["split_fingerprint"] == runs[1].data.tags["split_fingerprint"]
    bpr = runs[0]
    assert bpr.data.metrics["fit/epochs"] == 2 and "test/recall_at_10" in bpr.data.metrics
    assert bpr.info.run_name == "bpr-ml100k-seed0"
    # two per-epoch validations from the trainer, then the final validation of the restored best epoch
    assert len(client.get_metric_history(bpr.info.run_id, "val/ndcg_at_10")) == 3
    art = Path(urlparse(bpr.info.artifact_uri).path)
    for f in [
        "metrics/per_user_test.tsv",
        "recommendations/test_topk.tsv",
        "split/split.json",
        "checkpoints/best.ckpt",
        "config.yaml",
    ]:
        assert (art / f).is_file(), f
    assert art.is_relative_to(tmp_path / "mlartifacts")


@pytest.mark.slow
def test_config_typo_fails_fast_with_choices(tmp_path, data_dir):
    r = run_cli([str(BIN), "model=bprr"], tmp_path, data_dir, check=False)
    assert r.returncode != 0 and "itemknn" in r.stderr
    r = run_cli([str(BIN), "+model.kk=1"], tmp_path, data_dir, check=False)
    assert r.returncode == 2 and "unknown key(s) ['kk']" in r.stderr
    assert not (tmp_path / "mlflow.db").exists()  # nothing started
