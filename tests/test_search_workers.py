"""One Optuna study, two workers, as on two machines: two ``mmbench -m hparams_search=bpr_optuna`` processes (each in
its own folder) started at once with the study in PostgreSQL and their runs logged through an MLflow tracking server
on PostgreSQL (both started by the fixtures, ``tests/helpers/services.py``). One worker is killed in the middle of
its second trial; the other fails that trial by its stopped heartbeat, runs its parameters again, finishes the
study's budget and retrains the best configuration, once. ``mmbench-table`` then reads the trials back through the
server, and its values are the study's (read from PostgreSQL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from mmbench.reporting.cli import main as mmbench_table

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent / "mmbench"
N_TRIALS = 6
STUDY = "bpr-shared"
EXPERIMENT = "shared-search"


def worker_id(proc: subprocess.Popen) -> str:
    return f"{socket.gethostname()}:{proc.pid}"


def trial_run(client: MlflowClient, number: int) -> bool:
    """Whether trial ``number``'s MLflow run is open (created and not yet ended): killing the worker then leaves
    the run for the surviving worker to close as FAILED (a run already FINISHED would stay FINISHED)."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        return False
    runs = client.search_runs([exp.experiment_id], f"tags.optuna_trial = '{number}'")
    return any(r.info.status == "RUNNING" for r in runs)


@pytest.fixture(scope="module")
def search(postgres, mlflow_server, tmp_path_factory):
    """Run the two workers, kill worker A in its second trial; the study, the processes, B's output."""
    storage = postgres.database("optuna_shared")
    # data large enough that a trial's MLflow run stays open for a second or more (the kill below must land inside
    # one; with 120 x 150 a trial took well under a second once training got faster, and the kill missed)
    args = [str(BIN), "-m", "hparams_search=bpr_optuna", "dataset=synthetic", "dataset.n_users=600"]
    args += ["dataset.n_items=400", "eval.progress=false", "trainer.enable_progress_bar=false"]
    # one epoch: a run's latest val/ metric is then the restored model's (Lightning logs every epoch's under the
    # same key at later steps than the run's final value, so with more epochs MLflow shows the last epoch's)
    args += ["trainer.max_epochs=1", "logger.log_model=false", f"experiment_name={EXPERIMENT}"]
    args += [f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={STUDY}", "hydra.sweeper.pruner=null"]
    args += [f"hydra.sweeper.n_trials={N_TRIALS}", "hydra.sweeper.final_seeds=[0]"]
    args += ["hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=4"]
    env = {k: v for k, v in os.environ.items() if k != "MMBENCH_WORK_DIR"}
    env["MLFLOW_TRACKING_URI"] = mlflow_server.url
    procs = {}
    for name in ("a", "b"):
        folder = tmp_path_factory.mktemp(f"worker-{name}")
        out = open(folder / "out.txt", "w")
        procs[name] = subprocess.Popen(args, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs[name].out = folder / "out.txt"
    a, b = procs["a"], procs["b"]
    client = MlflowClient(mlflow_server.url)
    # one storage (one connection pool) for the polling below: a load_study(storage=url) per poll opens a new pool
    # each time, and under load the loop exhausted the server's 200 connections ("too many clients already")
    rdb = optuna.storages.RDBStorage(storage)
    try:
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and a.poll() is None:
            try:
                trials = optuna.load_study(study_name=STUDY, storage=rdb).get_trials(deepcopy=False)
            except KeyError:  # not created yet
                trials = []
            mine = [t for t in trials if t.user_attrs.get("worker") == worker_id(a)]
            running = [t.number for t in mine if t.state == TrialState.RUNNING]
            if any(t.state == TrialState.COMPLETE for t in mine) and running and trial_run(client, running[0]):
                a.send_signal(signal.SIGKILL)  # in the middle of its second trial, its MLflow run open
                killed = running[0]
            time.sleep(0.05)
        assert killed is not None, f"worker A never ran a second trial:\n{a.out.read_text()[-3000:]}"
        a.wait(30)
        assert b.wait(300) == 0, b.out.read_text()[-5000:]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait(30)
    study = optuna.load_study(study_name=STUDY, storage=rdb)
    return study, killed, a, b


def test_the_workers_finish_the_budget_between_them(search):
    study, killed, a, b = search
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # no number twice, none skipped
    assert not [t.number for t in trials if not t.state.is_finished()]  # nothing left running or waiting
    assert trials[killed].state == TrialState.FAIL and "error" not in trials[killed].user_attrs
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE  # the killed trial's parameters ran again
    assert retry[0].params == trials[killed].params and retry[0].user_attrs["worker"] == worker_id(b)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == N_TRIALS and len(trials) == N_TRIALS + 1  # the budget: 6 trials in all, not 6 each
    workers = {t.user_attrs["worker"] for t in complete}
    assert workers == {worker_id(a), worker_id(b)}  # both workers ran trials
    # the workers drew different parameters (their samplers' seeds differ), though both configure seed 0
    assert len({tuple(sorted(t.params.items())) for t in complete}) == N_TRIALS
    final = {k: v for k, v in study.user_attrs.items() if k.startswith("mmbench_final")}
    assert list(final.values()) == [{"worker": worker_id(b), "status": "done"}]


def test_every_trial_is_a_run_under_one_parent_and_the_best_is_retrained_once(search, mlflow_server):
    study, killed, a, b = search
    client = MlflowClient(mlflow_server.url)
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("mmbench_role") == "optuna_study"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    assert all(r.data.tags.get("mlflow.parentRunId") == parent for r in runs if r.info.run_id != parent)
    trial_runs = {int(r.data.tags["optuna_trial"]): r for r in runs if "optuna_trial" in r.data.tags}
    assert sorted(trial_runs) == [t.number for t in study.trials] and len(trial_runs) == len(runs) - 2
    assert trial_runs[killed].info.status == "FAILED"  # closed by the surviving worker
    assert {r.info.status for n, r in trial_runs.items() if n != killed} == {"FINISHED"}
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert trial_runs[t.number].data.metrics["val/ndcg_at_10"] == pytest.approx(t.value, rel=1e-6)
    finals = [r for r in runs if r.data.tags.get("optuna_final") == "true"]
    assert len(finals) == 1  # retrained once, not once per worker
    best = study.best_trial
    assert finals[0].data.params["model.embedding_dim"] == str(best.params["model.embedding_dim"])
    assert parents[0].data.tags["best_trial"] == str(best.number)
    assert "best parameters:" in b.out.read_text()


def test_the_table_reads_the_trials_back_through_the_server(search, mlflow_server, tmp_path, capsys):
    study, killed, a, b = search
    argv = ["trials", "--tracking-uri", mlflow_server.url, "--experiment", EXPERIMENT, "--rows", "optuna_trial"]
    argv += ["--filter", "attributes.status = 'FINISHED' and tags.optuna_trial LIKE '%'"]
    argv += ["--metrics", "val/ndcg@10", "--results-dir", str(tmp_path), "--no-plots"]
    assert mmbench_table(argv) == 0
    table = (tmp_path / "trials" / "README.md").read_text()
    cells = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    assert [c.strip() for c in cells[0]] == ["optuna_trial", "val/ndcg@10"], table
    rows = {c[0].strip(): c[1] for c in cells[1:]}
    complete = {str(t.number): t.value for t in study.trials if t.state == TrialState.COMPLETE}
    assert set(rows) == set(complete), table  # the killed trial's run is FAILED, not FINISHED: no row
    for number, value in complete.items():
        assert f"{value:.4f}" in rows[number], (number, table)
