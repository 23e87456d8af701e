"""logger=mlflow as the dashboard shows it: experiment kind, dataset inputs, source tags, the fitted recommender as
a pyfunc model that reproduces the run's test top-K, the size cap, registration and system metrics; params and tags
wait for the metrics and go in the same log_batch calls (MLflow's limits kept)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hydra import initialize_config_dir
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.config import CONF_DIR, compose
from mmbench.tracking.mlflow_tracker import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, MLflowTracker, source_tags

UI_JS = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


def run(tmp: Path, *overrides: str) -> pipeline.RunResult:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp}",
                f"logger.tracking_uri=sqlite:///{tmp}/mlflow.db",
                "dataset=synthetic",
                "eval.progress=false",
                *overrides,
            ]
        )
    return pipeline.run(cfg)


@pytest.fixture(scope="module")
def itemknn(tmp_path_factory) -> tuple[Path, pipeline.RunResult]:
    """One ItemKNN run on synthetic data, its model registered, system metrics sampled every 0.2 s."""
    tmp = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["/venv/bin/mmbench", "model=itemknn"])  # the command line of a CLI run
        res = run(
            tmp,
            "model=itemknn",
            "logger.register_as=mmbench-test",
            "logger.system_metrics=true",
            "logger.system_metrics_interval_s=0.2",
        )
    return tmp, res


def test_experiment_kind_is_the_tag_and_value_of_the_installed_mlflow_ui():
    """The constants are those MLflow 3's UI bundle reads and writes (its kind selector sets this tag)."""
    bundles = sorted(UI_JS.glob("*.js")) if UI_JS.is_dir() else []
    if not bundles:
        pytest.skip(f"no MLflow UI bundle under {UI_JS} (mlflow-skinny?)")
    text = "\n".join(p.read_text(errors="ignore") for p in bundles if "experimentKind" in p.read_text(errors="ignore"))
    assert f'key:"{EXPERIMENT_KIND_TAG}"' in text  # the selector's setExperimentTag
    assert re.search(r'CUSTOM_MODEL_DEVELOPMENT="' + EXPERIMENT_KIND + '"', text)


def test_experiments_are_marked_model_training_without_overriding_a_chosen_kind(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    MLflowTracker(uri, "fresh", str(tmp_path / "art")).start()
    assert client.get_experiment_by_name("fresh").tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    old = client.create_experiment("old")  # made before mmbench set the kind
    MLflowTracker(uri, "old").start()
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    MLflowTracker(uri, "chosen").start()
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_each_split_part_is_a_dataset_input(itemknn):
    tmp, res = itemknn
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    inputs = client.get_run(res.run_id).inputs.dataset_inputs
    got = {i.tags[0].value: i.dataset for i in inputs}
    assert [t.key for i in inputs for t in i.tags] == ["mlflow.data.context"] * 3
    assert sorted(got) == ["test", "train", "val"]
    for part, d in got.items():
        path = res.split.directory / f"{part}.tsv"
        frame = pd.read_csv(path, sep="\t")  # the saved part, read independently of the split object
        assert d.name == "synthetic"
        assert d.digest == res.split.fingerprint[:16] + "-" + part
        assert d.source_type == "local" and f'"{path.resolve()}"' in d.source
        assert json.loads(d.profile) == {
            "rows": len(frame),
            "users": frame.user.nunique(),
            "items": frame.item.nunique(),
        }
    exp = client.get_experiment_by_name("mmbench").experiment_id
    found = client.search_runs([exp], "dataset.name = 'synthetic' AND dataset.context = 'test'")
    assert [r.info.run_id for r in found] == [res.run_id]
    assert not client.search_runs([exp], "dataset.name = 'ml100k'")


def test_source_tags_name_the_command_and_the_commit(itemknn):
    tmp, res = itemknn
    tags = MlflowClient(f"sqlite:///{tmp}/mlflow.db").get_run(res.run_id).data.tags
    root = Path(pipeline.__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.git.commit"] == head
    assert tags["git_commit"] in (head, head + "-dirty")  # mmbench's own tag keeps the -dirty mark
    assert tags["mlflow.source.name"] == "mmbench model=itemknn"  # the Source column


def test_source_tags_of_python_m_mmbench_and_of_a_dirty_tree():
    tags = source_tags({"command": "/src/mmbench/__main__.py model=pop seed=1", "git_commit": "abc123-dirty"})
    assert tags["mlflow.source.name"] == "mmbench model=pop seed=1"
    assert tags["mlflow.source.git.commit"] == "abc123" and tags["mlflow.source.type"] == "LOCAL"
    tags = source_tags({"command": "scripts/mm_grid.py run", "git_commit": "unknown"})
    assert tags["mlflow.source.name"] == "mm_grid.py run" and "mlflow.source.git.commit" not in tags


def test_logged_model_reproduces_the_test_topk(itemknn):
    tmp, res = itemknn
    mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{res.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)
    art = Path(res.artifact_uri.removeprefix("file://"))
    ref = pd.read_csv(art / "recommendations" / "test_topk.tsv", sep="\t")
    got = model.predict(pd.DataFrame({"user": ref.user.drop_duplicates().to_numpy()}))
    assert list(got.columns) == ["user", "rank", "item", "score"]
    assert (
        len(got) == len(ref)
        and (got[["user", "rank", "item"]].to_numpy() == ref[["user", "rank", "item"]].to_numpy()).all()
    )
    np.testing.assert_allclose(got.score.to_numpy(), ref.score.to_numpy(), rtol=1e-7, atol=1e-7)  # file: %.8g
    three = model.predict(pd.DataFrame({"user": ref.user.iloc[[0]]}), params={"k": 3})
    assert three[["rank", "item"]].to_numpy().tolist() == ref[["rank", "item"]].to_numpy()[:3].tolist()
    sig = model.metadata.signature
    assert sig.inputs.input_names() == ["user"] and sig.outputs.input_names() == ["user", "rank", "item", "score"]
    with pytest.raises(Exception, match="not in the model's training data"):
        model.predict(pd.DataFrame({"user": [10**9]}))


def test_model_is_registered_and_counted(itemknn):
    tmp, res = itemknn
    client = MlflowClient(f"sqlite:///{tmp}/mlflow.db")
    (version,) = client.search_model_versions("name = 'mmbench-test'")
    assert version.run_id == res.run_id
    assert version.source == client.get_run(res.run_id).data.tags["mmbench.model_uri"]
    assert 0 < res.metrics["model/size_mb"] < 50 and res.metrics["time/log_model_s"] > 0


def test_a_run_shorter_than_one_sampling_interval_still_logs_its_sample(tmp_path):
    res = run(tmp_path, "model=pop", "logger.system_metrics=true", "logger.system_metrics_interval_s=600")
    metrics = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.metrics
    assert metrics["system/system_memory_usage_megabytes"] > 0 and metrics["system/cpu_utilization_percentage"] >= 0


def test_system_metrics_are_sampled(itemknn):
    tmp, res = itemknn
    metrics = MlflowClient(f"sqlite:///{tmp}/mlflow.db").get_run(res.run_id).data.metrics
    assert metrics["system/cpu_utilization_percentage"] >= 0
    assert metrics["system/system_memory_usage_megabytes"] > 0


def test_a_model_over_the_cap_is_not_logged(tmp_path):
    res = run(tmp_path, "model=pop", "logger.model_size_cap_mb=0.001")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_ = client.get_run(res.run_id)
    assert run_.data.tags["mmbench.model_not_logged"].endswith("> cap 0.001 MB")
    assert res.metrics["model/size_mb"] > 0.001 and "time/log_model_s" not in res.metrics
    assert not run_.outputs.model_outputs and "system/cpu_utilization_percentage" not in run_.data.metrics


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


def test_dataset_inputs_survive_a_parallel_run_creating_the_same_dataset(tmp_path, monkeypatch):
    """Two runs of one split logged at once through an MLflow server on PostgreSQL both insert the dataset; the loser
    gets the server's duplicate-key error (seen in tests/test_search_workers.py) and logs again, linking it."""
    from mlflow.exceptions import MlflowException

    from mmbench.tracking.base import DataPart

    tracker = MLflowTracker(f"sqlite:///{tmp_path}/mlflow.db", "race")
    tracker.start()
    calls = []
    real = tracker.client.log_inputs

    def lose_the_first_race(run_id, datasets):
        calls.append(run_id)
        if len(calls) == 1:
            raise MlflowException(
                '(psycopg.errors.UniqueViolation) duplicate key value violates constraint "dataset_pk"'
            )
        return real(run_id, datasets=datasets)

    monkeypatch.setattr(tracker.client, "log_inputs", lose_the_first_race)
    (tmp_path / "train.tsv").write_text("")
    tracker.log_inputs([DataPart("synthetic", "abc-train", str(tmp_path / "train.tsv"), "train", {"rows": 1})])
    tracker.end()
    assert len(calls) == 2
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(tracker.run_id)
    assert [d.dataset.digest for d in run.inputs.dataset_inputs] == ["abc-train"]


def test_a_negative_epoch_metrics_flush_s_fails_naming_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"logger.epoch_metrics_flush_s=-1 must be >= 0"):
        MLflowTracker(f"sqlite:///{tmp_path}/m.db", epoch_metrics_flush_s=-1)
