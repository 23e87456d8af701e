"""Optuna hyperparameter search as a Hydra sweeper, with pruning from the Lightning validation loop
(``mmbench.training.pruning.OptunaPruning``).

Why our own sweeper: the published hydra-optuna-sweeper (1.3.0) requires optuna<3, and optuna 2.10
with SQLAlchemy 2 cannot open an SQLite storage. This sweeper runs current Optuna with any
persistent storage (SQLite by default, PostgreSQL or MySQL), so studies resume after an interruption
and several workers can share one study. Hydra's plugin discovery imports this module on every ``mmbench`` start:
it imports no Lightning, MLflow or Optuna at module level (``tests/test_startup.py``).

Each trial is one ordinary ``mmbench`` job with sampled overrides: it is validated on the validation
set only (``evaluate_test=false``), reports the monitored validation metric every epoch (the pruner
may stop it), and is an MLflow child run of the study's parent run. After the search the best
parameters are written as an override file and retrained with ``final_seeds``, each tested once.

Several workers (``mmbench -m hparams_search=...`` started on any machines with the same storage and study name)
share the study: ``n_trials`` is the study's total, trials are asked under a study lock (:class:`StudyLock`), each
running trial has a heartbeat, a trial whose worker died is failed and retried by another worker, and the best
configuration is retrained once, by the worker that finds the budget spent and nothing running.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


class SweepConfigCache:
    """Hydra's config loader, with ``load_sweep_config`` composing once per distinct set of config-group overrides.

    Hydra composes every job of a multirun from scratch (reading and merging every YAML file of its defaults tree,
    ~0.3 s a job). Its composition is: the defaults tree from the config-group overrides (``model=svd``), then the
    value overrides (``split.fold=2``: keys that are not a config group, as Hydra's ``Overrides`` sorts them) applied
    to the composed config, then the overrides recorded in ``hydra.overrides.task`` and
    ``hydra.job.override_dirname``. This cache composes the first part once per (config name, Hydra overrides,
    group overrides) and does the rest on a deep copy, in the same way: the config of each job is the one Hydra
    composes (``tests/test_search.py`` compares them for every job of ``experiment=surprise_ml100k``). Jobs with an
    override of the ``hydra`` node go through Hydra's own path."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._base: dict[tuple[Any, ...], DictConfig] = {}
        self._is_group: dict[str, bool] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def _group(self, override: Override) -> bool:
        """Whether Hydra treats ``override`` as a config-group override (its key is a group, its value no dict)."""
        if override.input_line not in self._is_group:
            repo = self._loader.repository
            value = override.value()
            self._is_group[override.input_line] = repo.group_exists(override.key_or_group) and not isinstance(
                value, dict
            )
        return self._is_group[override.input_line]

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        import copy

        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname

        parsed = OverridesParser.create().parse_overrides(overrides=list(sweep_overrides))
        if any(o.is_hydra_override() or o.is_sweep_override() for o in parsed):
            return self._loader.load_sweep_config(master_config, list(sweep_overrides))
        groups = [o for o in parsed if self._group(o)]
        values = [o for o in parsed if not self._group(o)]
        key = (
            master_config.hydra.job.config_name,
            tuple(OmegaConf.to_container(master_config.hydra.overrides.hydra)),
            tuple(o.input_line for o in groups),
        )
        if key not in self._base:
            self._base[key] = self._loader.load_sweep_config(master_config, [o.input_line for o in groups])
        cfg = copy.deepcopy(self._base[key])
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        cfg.hydra.overrides.task = [o.input_line for o in parsed]
        dirname = cfg.hydra.job.config.override_dirname
        cfg.hydra.job.override_dirname = get_overrides_dirname(
            overrides=parsed, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
        )
        return cfg


class GridSweeper(BasicSweeper):
    """``hydra/sweeper=mmbench_grid``: Hydra's basic grid sweeper with cheaper compositions. The check before the jobs
    start composes one job per override value not yet seen instead of every job (a 10 x 5 grid: 14 checks, not 50),
    and the check and the launcher compose through one :class:`SweepConfigCache` (the 10 x 5 grid: 10 compositions in
    all, not 64). A misspelt value still fails before any job runs."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        loader = SweepConfigCache(hydra_context.config_loader)
        super().setup(
            hydra_context=HydraContext(config_loader=loader, callbacks=hydra_context.callbacks),
            task_function=task_function,
            config=config,
        )

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        seen: set[str] = set()
        first = []
        for overrides in batch:
            if not set(overrides) <= seen:
                first.append(overrides)
                seen.update(overrides)
        super().validate_batch_is_legal(first)


class SearchError(ValueError):
    """The search cannot start: bad search space, storage or direction."""


def distribution(override: Override) -> Any:
    """The Optuna distribution of a Hydra sweep override: ``choice``, ``range``, ``interval``, ``tag(log, ...)``."""
    import optuna.distributions as od

    value = override.value()
    log_scale = isinstance(value, (IntervalSweep, RangeSweep)) and "log" in value.tags
    if isinstance(value, ChoiceSweep):
        return od.CategoricalDistribution(list(value.list))
    if isinstance(value, RangeSweep):
        return od.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step or 1), log=log_scale)
    if isinstance(value, IntervalSweep):
        if isinstance(value.start, int) and isinstance(value.end, int) and "float" not in value.tags:
            return od.IntDistribution(value.start, value.end, log=log_scale)
        return od.FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise SearchError(f"{override.input_line!r} is not a search dimension (use choice, range or interval)")


def _built(node: Any) -> Any:
    """Hydra instantiates the sweeper's nested ``_target_`` nodes itself; build them here when it did not."""
    return instantiate(node) if isinstance(node, (DictConfig, dict)) else node


def stale_claim(claim: dict[str, Any]) -> bool:
    """Whether a ``running`` final-retraining claim belongs to a process of this host that no longer exists: a
    worker killed mid-retraining (a SIGKILL, the end of a session) never writes ``failed``, and its claim would
    otherwise keep every later worker from retraining the best. Claims of other hosts are left alone."""
    if claim.get("status") != "running":
        return False
    host, _, pid = str(claim.get("worker", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class StudyLock:
    """Serialises the steps of a shared study that must not interleave between workers: creating the study (and
    Optuna's tables), asking trials within the budget, claiming the final retraining. PostgreSQL and MySQL: a database
    lock held by this process's connection; SQLite: a lock file beside the database. Either is released when the
    process dies, so a killed worker never blocks the others."""

    def __init__(self, storage: str, study_name: str) -> None:
        import sqlalchemy

        url = sqlalchemy.engine.make_url(storage)
        self.backend, self.name = url.get_backend_name(), f"mmbench-optuna:{study_name}"
        if self.backend == "sqlite":
            if not url.database or url.database == ":memory:":
                raise SearchError(f"hydra.sweeper.storage={storage}: an SQLite study needs a file")
            db = Path(url.database)
            db.parent.mkdir(parents=True, exist_ok=True)
            self.file = db.with_name(db.name + ".lock")
        elif self.backend in ("postgresql", "mysql", "mariadb"):
            self.engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
        else:
            raise SearchError(
                f"hydra.sweeper.storage={storage}: use sqlite, postgresql or mysql (workers lock the study)"
            )

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if self.backend == "sqlite":
            with open(self.file, "w") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
            return
        from sqlalchemy import text

        if self.backend == "postgresql":  # advisory locks take a 64-bit key
            key = int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:8], "big", signed=True)
            acquire, release, args = "SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)", {"k": key}
        else:
            acquire, release, args = "SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)", {"k": self.name[:64]}
        with self.engine.connect() as conn:
            conn.execute(text(acquire), args)
            try:
                yield
            finally:
                conn.execute(text(release), args)


def budget(trials: Sequence[Any]) -> tuple[int, int]:
    """(finished trials that count towards ``n_trials``, running trials). A trial failed by the heartbeat check (its
    worker died) does not count when it was retried: its parameters run again as a new trial."""
    from optuna.trial import TrialState

    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = sum(t.state.is_finished() and t.number not in retried for t in trials)
    return counted, sum(t.state == TrialState.RUNNING for t in trials)


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=mmbench_optuna``: see the module docstring and ``conf/hparams_search/``."""

    def __init__(
        self,
        study_name: str,
        storage: str | None,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: Any,
        pruner: Any,
        params: dict[str, str],
        enqueue_trials: Sequence[dict[str, Any]],
        final_seeds: Sequence[int],
        heartbeat_interval: int = 10,
        grace_period: int = 60,
        max_retry: int = 1,
    ) -> None:
        if direction not in ("maximize", "minimize"):
            raise SearchError(f"hydra.sweeper.direction={direction!r}: choose maximize or minimize")
        if not storage:
            raise SearchError("hydra.sweeper.storage is empty: trials report to the study through its storage")
        if heartbeat_interval < 1 or grace_period <= heartbeat_interval:
            raise SearchError(
                f"hydra.sweeper.heartbeat_interval={heartbeat_interval}, grace_period={grace_period}: "
                "the interval is at least 1 s and the grace period longer than it"
            )
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs = n_trials, max(1, n_jobs)
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.params = dict(params or {})
        self.enqueue_trials = [dict(t) for t in enqueue_trials or []]
        self.final_seeds = list(final_seeds or [])
        self.heartbeat_interval, self.grace_period, self.max_retry = heartbeat_interval, grace_period, max_retry
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._stale: list[int] = []  # trials this worker found dead, their MLflow runs still to be closed

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def _space(self, arguments: list[str]) -> tuple[list[str], dict[str, Any]]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        fixed, space = [], {}
        for o in overrides:
            if o.is_sweep_override():
                space[o.get_key_element()] = distribution(o)
            else:
                fixed.append(o.input_line)
        if not space:
            raise SearchError("no search dimension: set hydra.sweeper.params (see conf/hparams_search/)")
        return fixed, space

    def _check_direction(self) -> str:
        from mmbench.evaluation.metrics import metric_for

        monitor = str(self.config.trainer.monitor)
        mode = metric_for(monitor).mode
        if (mode == "max") != (self.direction == "maximize"):
            raise SearchError(f"hydra.sweeper.direction={self.direction} but val/{monitor} is better when {mode}")
        return monitor

    def _tracker(self) -> Any:
        """The study's MLflow tracker, its store checked before anything else (an unreachable server fails here)."""
        from mmbench.tracking import MLflowTracker

        tracker = instantiate(self.config.logger)
        if not isinstance(tracker, MLflowTracker):
            raise SearchError(
                f"hparams_search logs its study as an MLflow parent run of the trials: use logger=mlflow, "
                f"not {self.config.logger._target_}"
            )
        tracker.check()
        return tracker

    def _parent_run(self, tracker: Any = None) -> Any:
        """The study's parent run: found by its tags (a resumed study, another worker) or created. Workers call this
        under the study lock, so they share one."""
        tracker = tracker or self._tracker()
        tags = {"mmbench_role": "optuna_study", "optuna_study": self.study_name, "optuna_storage": self.storage}
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracker.tracking_uri)
        exp = client.get_experiment_by_name(tracker.experiment)
        if exp is not None:
            found = client.search_runs(
                [exp.experiment_id],
                f"tags.mmbench_role = 'optuna_study' and tags.optuna_study = '{self.study_name}'",
            )
            found = [r for r in found if r.data.tags.get("optuna_storage") == self.storage]
            if found:
                tracker.client, tracker.run_id = client, found[0].info.run_id
                client.update_run(tracker.run_id, status="RUNNING")
                return tracker
        tracker.start(run_name=f"optuna-{self.study_name}", tags=tags)
        return tracker

    def _open_study(self) -> tuple[Any, Any]:
        """The study in an RDB storage with heartbeats (a trial whose worker stops beating for ``grace_period`` s is
        failed and, up to ``max_retry`` times, enqueued again with its parameters). Called under the study lock."""
        import optuna
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

        def stale(study: Any, trial: Any) -> None:
            log.warning(
                "trial %d: its worker stopped (no heartbeat for %d s); marked FAIL", trial.number, self.grace_period
            )
            self._stale.append(trial.number)
            retry(study, trial)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = RetryHeartbeatStaleTrialCallback(max_retry=self.max_retry)
            rdb = RDBStorage(
                self.storage,
                heartbeat_interval=self.heartbeat_interval,
                grace_period=self.grace_period,
                heartbeat_stale_trial_callback=stale,
            )
        study = optuna.create_study(
            study_name=self.study_name,
            storage=rdb,
            pruner=_built(self.pruner_cfg),
            direction=self.direction,
            load_if_exists=True,
        )
        workers = list(study.user_attrs.get("mmbench_workers", []))
        study.set_user_attr("mmbench_workers", [*workers, self.worker])
        study.sampler = self._sampler(len(workers))
        return study, rdb

    def _sampler(self, index: int) -> Any:
        """The configured sampler; the ``index``-th worker of a study (resumes included) adds ``index`` to its seed,
        so workers do not draw the same parameters."""
        node = OmegaConf.select(self.config, "hydra.sweeper.sampler") if hasattr(self, "config") else None
        if isinstance(node, DictConfig) and node.get("seed") is not None and index:
            node = OmegaConf.merge(node, {"seed": int(node.seed) + index})
            log.info("worker %d of study %s: sampler seed %d", index, self.study_name, node.seed)
            return instantiate(node)
        return _built(self.sampler_cfg)

    def _fail_orphans(self, study: Any, rdb: Any) -> None:
        """Fail RUNNING trials without a heartbeat: left by an interrupted search that kept none (workers of this
        sweeper record one under the lock as they ask), they would otherwise run forever. They count as finished."""
        from optuna.trial import TrialState
        from sqlalchemy import text

        query = (
            "SELECT t.trial_id, t.number FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
            "WHERE t.study_id = :s AND t.state = 'RUNNING' AND h.trial_id IS NULL"
        )
        with rdb.engine.connect() as conn:
            orphans = conn.execute(text(query), {"s": study._study_id}).all()
        for trial_id, number in orphans:
            log.warning("trial %d was left running by an interrupted search: marked FAIL", number)
            study._storage.set_trial_state_values(trial_id, TrialState.FAIL)

    def _ask(self, study: Any, rdb: Any, space: dict[str, Any]) -> tuple[list[Any], int, int]:
        """Under the study lock: fail dead workers' trials, then ask as many trials as the budget leaves (at most
        ``n_jobs``; enqueued and retried trials first), each with a first heartbeat. Returns (trials, counted,
        running) as they were before asking."""
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
            optuna.storages.fail_stale_trials(study)
            counted, running = budget(study.get_trials(deepcopy=False))
            asked = []
            for _ in range(min(self.n_jobs, self.n_trials - counted - running)):
                trial = study.ask(space)
                trial.set_user_attr("worker", self.worker)
                rdb.record_heartbeat(trial._trial_id)
                asked.append(trial)
        return asked, counted, running

    @contextmanager
    def _heartbeats(self, rdb: Any, trials: list[Any]) -> Iterator[None]:
        """Record the trials' heartbeats every ``heartbeat_interval`` s while they run (in this process or a job's)."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                for t in trials:
                    rdb.record_heartbeat(t._trial_id)

        thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _close_stale_runs(self, parent: Any) -> None:
        """End the MLflow runs of trials whose worker died (they stay RUNNING otherwise) as FAILED."""
        while self._stale:
            number = self._stale.pop()
            query = f"tags.`mlflow.parentRunId` = '{parent.run_id}' and tags.optuna_trial = '{number}'"
            for run in parent.client.search_runs([parent.experiment_id], query):
                if run.info.status == "RUNNING":
                    parent.client.set_tag(run.info.run_id, "optuna_state", "FAIL (worker stopped)")
                    parent.client.set_terminated(run.info.run_id, "FAILED")

    def sweep(self, arguments: list[str]) -> Any:
        import optuna
        from optuna.trial import TrialState

        fixed, space = self._space(arguments)
        monitor = self._check_direction()
        tracker = self._tracker()
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        lock = StudyLock(self.storage, self.study_name)
        with lock():
            study, rdb = self._open_study()
            self._fail_orphans(study, rdb)
            if not study.trials:
                for params in self.enqueue_trials:
                    study.enqueue_trial(params)
            parent = self._parent_run(tracker)
        parent.experiment_id = parent.experiment_id or parent.client.get_run(parent.run_id).info.experiment_id
        parent.set_tags({"sweep_id": str(sweep_dir.resolve())})
        parent.flush()  # visible while the trials run
        log.info(
            "study %s, worker %s: %d trials finished of %d",
            self.study_name,
            self.worker,
            budget(study.trials)[0],
            self.n_trials,
        )
        job_idx, claimed = 0, False
        final_key = f"mmbench_final:n_trials={self.n_trials}:seeds={','.join(map(str, self.final_seeds))}"
        while True:
            with lock():
                trials, counted, running = self._ask(study, rdb, space)
                if not trials and not running:  # the budget is spent and nothing runs: retrain the best, once
                    claimed = self._claim(study, final_key)
            self._close_stale_runs(parent)
            if not trials:
                if not running:
                    break
                time.sleep(self.heartbeat_interval)  # another worker's trial may die and come back to be retried
                continue
            batch = [
                fixed
                + [f"{k}={v}" for k, v in t.params.items()]
                + [
                    f"trial.study_name={self.study_name}",
                    f"trial.storage={self.storage}",
                    f"trial.number={t.number}",
                    f"trial.parent_run_id={parent.run_id}",
                    "evaluate_test=false",
                ]
                for t in trials
            ]
            self.validate_batch_is_legal(batch)
            with self._heartbeats(rdb, trials):
                returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            job_idx += len(batch)
            for trial, ret in zip(trials, returns, strict=True):
                try:
                    value = ret.return_value
                except optuna.TrialPruned:
                    study.tell(trial, state=TrialState.PRUNED)
                except Exception as e:  # a failed trial must not end the study, but must be visible
                    log.error("trial %d failed: %s", trial.number, e)
                    trial.set_user_attr("error", str(e)[:2000])
                    study.tell(trial, state=TrialState.FAIL)
                    if trial.number == 0:
                        raise
                else:
                    study.tell(trial, float(value))
        if not claimed:
            claim = study.user_attrs.get(final_key, {})
            print(f"study {self.study_name}: {self.n_trials} trials done; final retraining by {claim.get('worker')}")
            return []
        try:
            results = self._finish(study, fixed, parent, sweep_dir, monitor, job_idx)
        except BaseException:
            study.set_user_attr(final_key, {"worker": self.worker, "status": "failed"})
            raise
        study.set_user_attr(final_key, {"worker": self.worker, "status": "done"})
        return results

    def _claim(self, study: Any, key: str) -> bool:
        """Claim the final retraining of this budget for this worker (under the study lock): only when no worker
        claimed it yet, its retraining failed, or it was killed while retraining (:func:`stale_claim`)."""
        claim = study.user_attrs.get(key)
        if claim and claim.get("status") != "failed":
            if not stale_claim(claim):
                return False
            log.warning("study %s: worker %s died retraining the best; retraining it again", self.study_name, claim)
        study.set_user_attr(key, {"worker": self.worker, "status": "running"})
        return True

    def _finish(self, study: Any, fixed: list[str], parent: Any, sweep_dir: Path, monitor: str, job_idx: int) -> Any:
        from optuna.trial import TrialState

        states = {
            s.name: len(study.get_trials(states=(s,)))
            for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        }
        if not states["COMPLETE"]:
            raise SearchError(f"study {self.study_name}: no trial completed ({states})")
        best = study.best_trial
        overrides = [f"{k}={v}" for k, v in best.params.items()]
        (sweep_dir / "best_overrides.txt").write_text(" ".join(overrides) + "\n")
        body = OmegaConf.create({})
        for k, v in best.params.items():
            OmegaConf.update(body, k, v, force_add=True)
        (sweep_dir / "best_params.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(body))
        # tags, not params: a resumed study may find a new best, and MLflow params cannot change
        parent.set_tags({f"best.{k}": v for k, v in best.params.items()} | {"best_trial": best.number})
        parent.log_metrics({f"best/val/{monitor}": best.value, **{f"trials/{k.lower()}": v for k, v in states.items()}})
        parent.client.log_artifact(parent.run_id, str(sweep_dir / "best_overrides.txt"))
        parent.client.log_artifact(parent.run_id, str(sweep_dir / "best_params.yaml"))
        log.info("best trial %d: val/%s=%.5f with %s", best.number, monitor, best.value, " ".join(overrides))
        final = [
            fixed + overrides + [f"seed={s}", f"trial.parent_run_id={parent.run_id}", "+tags.optuna_final=true"]
            for s in self.final_seeds
        ]
        results = []
        if final:
            self.validate_batch_is_legal(final)
            results = self.launcher.launch(final, initial_job_idx=job_idx)
            values = [float(r.return_value) for r in results]
            parent.log_metrics({f"final/val/{monitor}_mean": sum(values) / len(values)})
        parent.end("FINISHED")
        print(f"best parameters: {' '.join(overrides)}  (val/{monitor}={best.value:.5f}; {states})")
        print(f"override file: {sweep_dir / 'best_overrides.txt'}  (mmbench $(cat ...))")
        return results


def load_trial(study_name: str, storage: str, number: int) -> Any:
    """The running trial ``number`` of a stored study, for reporting intermediate values from a job.

    The pruner is not stored with a study: it is rebuilt from this job's ``hydra.sweeper.pruner``.
    """
    import optuna
    from hydra.core.hydra_config import HydraConfig

    pruner = None
    if HydraConfig.initialized():
        pruner = _built(HydraConfig.get().sweeper.get("pruner"))
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner or optuna.pruners.NopPruner())
    for t in study.get_trials(deepcopy=False):
        if t.number == number:
            return optuna.trial.Trial(study, t._trial_id)
    raise SearchError(f"study {study_name!r} in {storage} has no trial {number}")
