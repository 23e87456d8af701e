"""logger=csv: a run as a folder of CSV files holding what an MLflow run holds."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra import initialize_config_dir

from mmbench import pipeline
from mmbench.config import CONF_DIR, compose
from mmbench.tracking import CSVTracker, TrackingError


def test_pipeline_run_with_logger_csv(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp_path}",
                "logger=csv",
                "dataset=synthetic",
                "model=pop",
                "eval.progress=false",
            ],
        )
    res = pipeline.run(cfg)
    run = tmp_path / "csv_runs" / "mmbench" / res.run_id
    assert run.is_dir() and not (tmp_path / "mlflow.db").exists()
    metrics = pd.read_csv(run / "metrics.csv")
    got = dict(zip(metrics["key"], metrics["value"]))
    assert got["test/ndcg_at_10"] == res.metrics["test/ndcg@10"]  # full precision, MLflow's key names
    assert set(got) == {k.replace("@", "_at_") for k in res.metrics}
    params = pd.read_csv(run / "params.csv", keep_default_na=False)
    assert dict(zip(params["key"], params["value"]))["model._target_"] == "mmbench.models.topn.pop.Pop"
    tags = dict(pd.read_csv(run / "tags.csv", keep_default_na=False).itertuples(index=False))
    assert tags["mmbench.status"] == "FINISHED" and tags["model"] == "pop" and tags["split_fingerprint"]
    assert tags["mmbench.run_name"] == "pop-synthetic-seed0"
    for f in ["config.yaml", "metrics/per_user_test.tsv", "recommendations/test_topk.tsv", "split/split.json"]:
        assert (run / "artifacts" / f).is_file(), f
    assert res.artifact_uri == (run / "artifacts").resolve().as_uri()
    inputs = pd.read_csv(run / "inputs.csv", keep_default_na=False)  # the data parts, as MLflow's dataset inputs
    assert inputs.context.tolist() == ["train", "val", "test"] and set(inputs.name) == {"synthetic"}
    for part in inputs.itertuples():
        saved = pd.read_csv(part.source, sep="\t")  # the split store's file (runs reference it, not copy it)
        assert (part.rows, part.users, part.items) == (len(saved), saved.user.nunique(), saved.item.nunique())
        assert part.digest == f"{res.split.fingerprint[:16]}-{part.context}" and part.source.endswith(
            f"{part.context}.tsv"
        )


def test_tags_are_replaced_and_params_appended(tmp_path):
    t = CSVTracker(str(tmp_path), "exp")
    rid = t.start("r", {"a": "1"})
    t.set_tags({"a": "2", "b": "x,y"})
    t.log_params({"p": 1})
    t.log_params({"q": "with, comma"})
    t.log_metrics({"loss": 0.5}, step=3)
    t.end("FAILED")
    folder = tmp_path / "exp" / rid
    tags = dict(pd.read_csv(folder / "tags.csv", dtype=str).itertuples(index=False))
    assert tags == {"a": "2", "b": "x,y", "mmbench.run_name": "r", "mmbench.status": "FAILED"}
    assert pd.read_csv(folder / "params.csv", dtype=str)["value"].tolist() == ["1", "with, comma"]
    assert pd.read_csv(folder / "metrics.csv")[["key", "value", "step"]].values.tolist() == [["loss", 0.5, 3]]


def test_an_unwritable_root_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(TrackingError, match="cannot be created"):
        CSVTracker(str(tmp_path / "file"), "exp").start()
