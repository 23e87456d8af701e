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


def write_tsv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")


def test_sparse_users_are_the_evaluators_flagged_ones(tmp_path):
    # training counts a:1, b:3, c:5; the split files alone would put a (the 25% quantile, 2) in the bucket, but the
    # evaluator (over every user of the id space) flagged b: the script follows the flag. c's list is short (1 item).
    split = "user\titem\trating\ttimestamp"
    write_tsv(
        tmp_path / "split/train.tsv",
        split,
        ["a\t1\t1\t0"] + [f"b\t{i}\t1\t0" for i in (1, 2, 3)] + [f"c\t{i}\t1\t0" for i in (1, 2, 3, 4, 5)],
    )
    write_tsv(tmp_path / "split/val.tsv", split, [])
    write_tsv(tmp_path / "split/test.tsv", split, ["a\t7\t1\t0", "b\t8\t1\t0", "c\t9\t1\t0"])
    write_tsv(tmp_path / "metrics/per_user_test.tsv", "user\tsparse", ["a\t0", "b\t1", "c\t0"])
    write_tsv(
        tmp_path / "recommendations/test_topk.tsv",
        "user\trank\titem\tscore",
        ["a\t1\t7\t1", "a\t2\t8\t0.5", "b\t1\t9\t1", "b\t2\t8\t0.5", "c\t1\t9\t1"],
    )
    out = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "recompute_metrics.py"), str(tmp_path), "--ks", "2"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert out["hit@2"] == 1.0 and out["precision@2"] == 0.5  # one hit each; c: 1 of K = 2 although its list has 1
    assert out["sparse/mrr@2"] == 0.5 and out["sparse/precision@2"] == 0.5  # b only: its hit at rank 2


def test_truncated_user_metrics_match_independent_recomputation(tmp_path):
    """split=sparse_history: ``test/truncated/<metric>`` recomputed over the users listed in split.json."""
    cfg = compose(
        [
            f"paths.work_dir={tmp_path}",
            "dataset=synthetic",
            "model=pop",
            "split=sparse_history",
            "split.k=1",
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
    assert len([k for k in recomputed if k.startswith("truncated/")]) == 12
    for key, value in recomputed.items():
        assert logged[metric_key(f"test/{key}")] == pytest.approx(value, abs=1e-6), key
