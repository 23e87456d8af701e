"""Hydra multirun grids and Optuna searches, run as a user runs them (subprocesses on the synthetic data)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from mmbench.config import CONF_DIR

BIN = Path(sys.executable).parent / "mmbench"
FAST = ["dataset=synthetic", "eval.progress=false", "trainer.enable_progress_bar=false"]


def mmbench(args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MMBENCH_WORK_DIR")}
    r = subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def runs(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("mmbench")
    return client.search_runs([exp.experiment_id], max_results=1000)


@pytest.mark.slow
def test_multirun_grid_with_parallel_launcher_gives_one_run_per_job(tmp_path):
    mmbench(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *FAST, "model=pop,itemknn", "seed=0,1"], tmp_path
    )
    rs = runs(tmp_path)
    assert sorted((r.data.tags["model"], r.data.tags["seed"]) for r in rs) == [
        ("itemknn", "0"),
        ("itemknn", "1"),
        ("pop", "0"),
        ("pop", "1"),
    ]
    assert len({r.data.tags["sweep_id"] for r in rs}) == 1
    assert len({r.data.tags["split_fingerprint"] for r in rs}) == 1
    assert all(r.info.status == "FINISHED" for r in rs)


@pytest.mark.slow
def test_optuna_study_persists_resumes_and_retrains_best(tmp_path):
    common = ["hparams_search=bpr_optuna", *FAST, "trainer.max_epochs=2", "hydra.sweeper.pruner=null"]
    mmbench([*common, "hydra.sweeper.n_trials=4", "hydra.sweeper.final_seeds=[]"], tmp_path)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.load_study(study_name="bpr-synthetic", storage=storage)
    assert len(study.trials) == 4
    study.ask()  # an interrupted search leaves a RUNNING trial behind
    out = mmbench([*common, "hydra.sweeper.n_trials=8", "hydra.sweeper.final_seeds=[0,1]"], tmp_path).stdout
    study = optuna.load_study(study_name="bpr-synthetic", storage=storage)
    states = [t.state.name for t in study.trials]
    assert len(states) == 8 and states[4] == "FAIL" and states.count("COMPLETE") == 7
    assert "best parameters:" in out
    rs = runs(tmp_path)
    parents = [r for r in rs if r.data.tags.get("mmbench_role") == "optuna_study"]
    assert len(parents) == 1  # the resumed search reused the study's parent run
    parent = parents[0]
    children = [r for r in rs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    trials = [r for r in children if "optuna_trial" in r.data.tags]
    finals = [r for r in children if r.data.tags.get("optuna_final") == "true"]
    assert len(trials) == 7 and len(finals) == 2
    # trials never touch the test set; the retrained best runs test once each
    assert not any(k.startswith("test/") for r in trials for k in r.data.metrics)
    assert all("test/ndcg_at_10" in r.data.metrics for r in finals)
    best = study.best_trial
    assert parent.data.metrics["best/val/ndcg@10".replace("@", "_at_")] == pytest.approx(best.value)
    # the resumed study's best, even when it differs from the first search's (parent tags, not immutable params)
    assert {k: parent.data.tags[f"best.{k}"] for k in best.params} == {k: str(v) for k, v in best.params.items()}
    assert parent.data.tags["best_trial"] == str(best.number)
    sweep = Path(finals[0].data.tags["sweep_id"])
    text = (sweep / "best_overrides.txt").read_text().split()
    assert text == [f"{k}={v}" for k, v in best.params.items()]
    assert {r.data.params["model.embedding_dim"] for r in finals} == {str(best.params["model.embedding_dim"])}


@pytest.mark.slow
def test_a_deliberately_bad_trial_is_pruned(tmp_path):
    good = {"model.embedding_dim": 32, "model.reg": 1e-5, "model.optimizer.lr": 0.02}
    bad = {"model.embedding_dim": 32, "model.reg": 1e-5, "model.optimizer.lr": 1e-7}
    enqueue = "[" + ",".join("{" + ",".join(f"{k}:{v}" for k, v in t.items()) + "}" for t in (good, good, bad)) + "]"
    mmbench(
        [
            "hparams_search=bpr_optuna",
            *FAST,
            "trainer.max_epochs=6",
            "trainer.batch_size=256",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.final_seeds=[]",
            f"hydra.sweeper.enqueue_trials={enqueue}",
            "hydra.sweeper.pruner.n_startup_trials=2",
            "hydra.sweeper.pruner.n_warmup_steps=0",
        ],
        tmp_path,
    )
    study = optuna.load_study(study_name="bpr-synthetic", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert study.trials[2].params["model.optimizer.lr"] == pytest.approx(1e-7)
    pruned = [r for r in runs(tmp_path) if r.data.tags.get("optuna_trial") == "2"][0]
    assert pruned.data.tags["optuna_state"] == "PRUNED" and pruned.info.status == "KILLED"


def test_search_configs_and_launchers_compose(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for f in sorted((CONF_DIR / "hparams_search").glob("*_optuna.yaml")):
            cfg = compose("config", overrides=[f"hparams_search={f.stem}"], return_hydra_config=True)
            sweeper = cfg.hydra.sweeper
            assert sweeper._target_.endswith("MmbenchOptunaSweeper") and sweeper.params, f.stem
            assert sweeper.storage == f"sqlite:///{tmp_path}/optuna.db"
            assert sweeper.study_name.startswith(f.stem.removesuffix("_optuna"))
            assert cfg.hydra.runtime.choices.model == f.stem.removesuffix("_optuna")
            # the declared direction is the monitored metric's own
            rating = cfg.trainer.monitor == "rmse"
            assert sweeper.direction == ("minimize" if rating else "maximize"), f.stem
        cfg = compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        assert "SlurmLauncher" in cfg.hydra.launcher._target_ and cfg.hydra.launcher.gpus_per_node == 1


def test_a_search_needs_the_mlflow_logger(tmp_path):
    from omegaconf import OmegaConf

    from mmbench.search import OptunaSweeper, SearchError

    sweeper = OptunaSweeper("s", f"sqlite:///{tmp_path}/o.db", "maximize", 2, 1, None, None, {}, [], [])
    sweeper.config = OmegaConf.create(
        {"logger": {"_target_": "mmbench.tracking.csv_tracker.CSVTracker", "root": str(tmp_path)}}
    )
    with pytest.raises(SearchError, match="use logger=mlflow, not mmbench.tracking.csv_tracker.CSVTracker"):
        sweeper._parent_run()


def test_grid_sweeper_composes_each_override_value_once_before_the_jobs():
    """hydra/sweeper=mmbench_grid (experiment=surprise_ml100k): a 3 x 2 grid is checked with 4 compositions covering
    every value, not 6; a composition error still surfaces before any job."""
    from types import SimpleNamespace

    from mmbench.search import GridSweeper

    composed = []

    class Loader:
        def load_sweep_config(self, master_config, sweep_overrides):
            if "model=nope" in sweep_overrides:
                raise ValueError("Could not find 'model/nope'")
            composed.append(sweep_overrides)

    sweeper = GridSweeper(max_batch_size=None)
    sweeper.hydra_context, sweeper.config = SimpleNamespace(config_loader=Loader()), object()
    grid = [[f"model={m}", f"split.fold={f}"] for m in ("svd", "nmf", "pop") for f in (0, 1)]
    sweeper.validate_batch_is_legal(grid)
    assert composed == [grid[0], grid[1], grid[2], grid[4]]
    with pytest.raises(ValueError, match="model/nope"):
        sweeper.validate_batch_is_legal([*grid, ["model=nope", "split.fold=0"]])


def test_the_budget_counts_finished_trials_except_those_run_again():
    """Shared studies: a trial failed because its worker died and then retried does not count towards n_trials, its
    retry does; an error, a pruned trial or a last failed retry (max_retry spent) count; running trials are apart."""
    from optuna.distributions import IntDistribution
    from optuna.trial import create_trial

    from mmbench.search import budget

    dist = {"x": IntDistribution(0, 9)}

    def trial(number, state, **system_attrs):
        t = create_trial(state=state, params={"x": 1}, distributions=dist, system_attrs=system_attrs)
        t.number = number
        return t

    S = optuna.trial.TrialState
    trials = [
        trial(0, S.PRUNED),
        trial(1, S.FAIL),  # worker died; retried as 3, which died too and was retried as 4
        trial(2, S.FAIL),  # an error in the job (or the last retry): counts
        trial(3, S.FAIL, failed_trial=1, retry_history=[1]),
        trial(4, S.RUNNING, failed_trial=1, retry_history=[1, 3]),
        trial(5, S.RUNNING),
    ]
    assert budget(trials) == (2, 2)  # 0 and 2 count; 1 and 3 were run again; 4 and 5 run


def test_a_final_retraining_claim_of_a_killed_worker_is_stale():
    """A worker killed while retraining the best (e.g. at the end of a session) leaves a ``running`` claim; a later
    worker on the same host retrains instead of waiting for it forever. Live or foreign claims stand."""
    import socket

    from mmbench.search import stale_claim

    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process now
    assert stale_claim({"worker": f"{host}:{dead.pid}", "status": "running"})
    assert not stale_claim({"worker": f"{host}:{os.getpid()}", "status": "running"})  # alive
    assert not stale_claim({"worker": f"{host}:{dead.pid}", "status": "done"})
    assert not stale_claim({"worker": f"{host}:{dead.pid}", "status": "failed"})  # reclaimed anyway, not as stale
    assert not stale_claim({"worker": f"another-{host}:{dead.pid}", "status": "running"})  # cannot tell: stands


def test_shared_study_settings_are_checked(tmp_path):
    from mmbench.search import OptunaSweeper, SearchError, StudyLock

    with pytest.raises(SearchError, match="heartbeat_interval=5, grace_period=5"):
        OptunaSweeper("s", f"sqlite:///{tmp_path}/o.db", "maximize", 2, 1, None, None, {}, [], [], 5, 5)
    with pytest.raises(SearchError, match="use sqlite, postgresql or mysql"):
        StudyLock("oracle://host/db", "s")
    with pytest.raises(SearchError, match="needs a file"):
        StudyLock("sqlite:///:memory:", "s")


def test_sweep_config_cache_composes_every_job_as_hydra_does():
    """SweepConfigCache: every job's config (hydra node included) equals Hydra's own composition, with one
    composition per distinct set of config-group overrides; a bad value override still fails."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import ConfigCompositionException
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from mmbench.search import SweepConfigCache

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", ["experiment=surprise_ml100k"], RunMode.MULTIRUN)
        composed = []

        class Counting:
            repository = loader.repository

            def load_sweep_config(self, master_config, sweep_overrides):
                composed.append(list(sweep_overrides))
                return loader.load_sweep_config(master_config, sweep_overrides)

        cache = SweepConfigCache(Counting())
        exp = "experiment=surprise_ml100k"
        models = ("svd", "knn_basic", "normal_predictor")
        jobs = [[f"model={m}", f"split.fold={f}", exp] for m in models for f in (0, 3)]
        jobs += [["model=svd", "split.fold=1", exp, "eval.metrics=[recall,ndcg]", "+tags.x=1", "model.n_epochs=3"]]
        jobs += [["model=svd", "split=random", "split.seed=4", exp]]
        for job in jobs:
            ours, hydras = cache.load_sweep_config(master, job), loader.load_sweep_config(master, job)
            assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), job
            assert OmegaConf.is_struct(ours) and ours.hydra.overrides.task == job
        assert composed == [["model=svd", exp], ["model=knn_basic", exp], ["model=normal_predictor", exp]] + [
            ["model=svd", "split=random", exp]
        ]
        with pytest.raises(ConfigCompositionException, match="split.nope"):
            cache.load_sweep_config(master, ["model=svd", "split.nope=1", exp])
