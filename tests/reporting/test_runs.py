"""Reading runs: the store's finished runs as a frame, per-user files and their ``sparse`` flags."""

from __future__ import annotations

import pandas as pd
import pytest

from mmbench.reporting.runs import TableError, finished_keys, group_flags, load_runs, per_user_frame
from tests.helpers.mlflow_runs import log_mlflow_run


def test_finished_runs_only_oldest_first_with_tags_params_metrics(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    pu = pd.DataFrame({"user": ["007", "8"], "ndcg@10": [0.5, 0.25], "sparse": [1, 0]})
    late = log_mlflow_run(uri, "x", {"model": "b"}, {"test/ndcg@10": 0.2}, 2_000, pu, {"eval.k": "10"})
    early = log_mlflow_run(uri, "x", {"model": "a"}, {"test/ndcg@10": 0.1}, 1_000)
    log_mlflow_run(uri, "x", {"model": "c"}, {}, 3_000, status="FAILED")
    runs = load_runs(uri, "x")
    assert runs["run_id"].tolist() == [early, late]
    assert runs["tags.model"].tolist() == ["a", "b"] and runs.loc[1, "params.eval.k"] == "10"
    assert runs["test/ndcg_at_10"].tolist() == pytest.approx([0.1, 0.2])
    frame = per_user_frame(runs.loc[1, "artifact_uri"])
    assert frame["user"].tolist() == ["007", "8"]  # ids stay strings
    assert group_flags(frame, late).to_dict() == {"007": True, "8": False}
    assert finished_keys(runs, ["model"]) == {("a",), ("b",)} and finished_keys(runs, ["nope"]) == set()
    with pytest.raises(TableError, match="no MLflow experiment 'y'.*'x'"):
        load_runs(uri, "y")
    with pytest.raises(TableError, match="no finished runs"):
        load_runs(uri, "x", "tags.model = 'c'")


def test_group_flags_must_be_0_or_1():
    with pytest.raises(TableError, match="run r1: column 'sparse' .* not 0/1"):
        group_flags(pd.DataFrame({"user": ["1"], "sparse": [2]}), "r1")
