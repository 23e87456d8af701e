"""MLflow tracking: one run per pipeline run, opened before any work so a bad store fails first."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mmbench.evaluation.metrics import metric_key
from mmbench.tracking.base import DataPart, TrackingError

if TYPE_CHECKING:
    from mmbench.tracking.recommender_model import TopK

log = logging.getLogger(__name__)

# An unreachable server should fail in seconds, not after MLflow's default minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")

# How MLflow 3 records an experiment's kind (the experiment tag its UI's kind selector writes, values of its
# ExperimentKind enum): mmbench's experiments hold model-training runs, not GenAI traces.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# how a lost insert race reads (PostgreSQL, SQLite, MySQL) in the store error an MLflow server passes on
DUPLICATE_KEY = ("duplicate key value", "UNIQUE constraint failed", "Duplicate entry")


class MLflowTracker:
    """Logs params, metrics, tags and artifacts of one run.

    The default store is a local SQLite file plus an artifact folder beside it
    (``conf/logger/mlflow.yaml``); any MLflow URI (a server, a database) works.
    """

    kind: ClassVar[str] = "MLflow"

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "mmbench",
        artifact_dir: str | None = None,
        run_name: str | None = None,
        log_model: bool = True,
        model_size_cap_mb: float = 50.0,
        register_as: str | None = None,
        system_metrics: bool = False,
        system_metrics_interval_s: float = 10.0,
        epoch_metrics_flush_s: float = 10.0,
    ) -> None:
        if epoch_metrics_flush_s < 0:
            raise ValueError(f"logger.epoch_metrics_flush_s={epoch_metrics_flush_s} must be >= 0")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_dir = artifact_dir
        self.run_name = run_name
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.log_models = log_model
        self.model_size_cap_mb = model_size_cap_mb
        self.register_as = register_as
        self.system_metrics = system_metrics
        self.system_metrics_interval_s = system_metrics_interval_s
        self.epoch_metrics_flush_s = epoch_metrics_flush_s
        self._monitor: Any = None
        self._artifact_uri: str | None = None
        self._params: list[Param] = []  # logged with the next metrics, artifacts or end: one log_batch call
        self._tags: dict[str, RunTag] = {}

    @property
    def is_local(self) -> bool:
        return self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in self.tracking_uri

    def start(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
        """Create (or find) the experiment and open a run; raise :class:`TrackingError` if the store fails."""
        self.check()
        try:
            with self._init_lock():
                self.client = MlflowClient(tracking_uri=self.tracking_uri)
                exp_id = self._experiment_id()
            run = self.client.create_run(
                exp_id, run_name=run_name or self.run_name, tags=source_tags(tags or {}) | (tags or {})
            )
        except Exception as e:  # MLflow raises many types for an unusable store
            raise TrackingError(f"MLflow store {self.tracking_uri!r} is not usable: {e}") from e
        self.run_id, self.experiment_id, self._artifact_uri = run.info.run_id, exp_id, run.info.artifact_uri
        self._params, self._tags = [], {}
        if self.system_metrics:
            self._start_system_metrics()
        return self.run_id

    def check(self) -> None:
        """An MLflow server must answer before any work: one request to its ``/health`` page, no retries, so an
        unreachable server fails the run in seconds with its URI named (not MLflow's retries, not after training)."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{self.tracking_uri.rstrip('/')}/health", timeout=10).close()
        except urllib.error.HTTPError:
            pass  # it answered (a proxy or an auth layer may refuse /health): the MLflow calls tell the rest
        except OSError as e:
            reason = getattr(e, "reason", e)
            raise TrackingError(
                f"MLflow tracking server {self.tracking_uri} is unreachable ({reason}): start it (mlflow server ...) "
                "or point MLFLOW_TRACKING_URI / logger.tracking_uri at a running one"
            ) from e

    @contextmanager
    def _init_lock(self) -> Iterator[None]:
        """Serialise first use of a local SQLite store: parallel jobs (joblib launcher) would both create
        its tables ("table ... already exists")."""
        if not self.tracking_uri.startswith("sqlite:///"):
            yield
            return
        db = Path(self.tracking_uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        with open(db.with_name(db.name + ".lock"), "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            if EXPERIMENT_KIND_TAG not in exp.tags:  # made before mmbench set it; a kind chosen in the UI stays
                self.client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            return exp.experiment_id
        location = None
        if self.artifact_dir and self.is_local:
            location = (Path(self.artifact_dir).expanduser().resolve() / self.experiment).as_uri()
        try:
            return self.client.create_experiment(
                self.experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
            )
        except Exception:  # a parallel job (joblib launcher) created it first
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    @property
    def artifact_uri(self) -> str:
        if self._artifact_uri is None:  # a run this tracker did not create (the search's parent run)
            self._artifact_uri = self.client.get_run(self.run_id).info.artifact_uri
        return self._artifact_uri

    def log_params(self, params: dict[str, Any]) -> None:
        """Params (and tags, :meth:`set_tags`) wait for the next metrics, artifacts, :meth:`flush` or :meth:`end`,
        and go in the same ``log_batch`` calls: a run makes a handful of store calls, not one per kind."""
        self._params += [Param(k, str(v)[:6000]) for k, v in params.items()]

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._tags.update({k: RunTag(k, str(v)) for k, v in tags.items()})

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        import time

        ts = int(time.time() * 1000)
        self.flush([Metric(metric_key(k), float(v), ts, step) for k, v in metrics.items()])

    def flush(self, metrics: list[Metric] | None = None) -> None:
        """Send the waiting params and tags (and ``metrics``) in as few ``log_batch`` calls as MLflow's limits allow
        (100 params, 100 tags, 1000 entities per call)."""
        params, tags, metrics = self._params, list(self._tags.values()), list(metrics or [])
        self._params, self._tags = [], {}
        for s in range(0, max(len(params), len(tags), 1), 100):
            n = 1000 - len(params[s : s + 100]) - len(tags[s : s + 100])
            batch_metrics, metrics = metrics[:n], metrics[n:]
            if params[s : s + 100] or tags[s : s + 100] or batch_metrics:
                self.client.log_batch(
                    self.run_id, metrics=batch_metrics, params=params[s : s + 100], tags=tags[s : s + 100]
                )
        for s in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[s : s + 1000])

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        self.flush()
        self.client.log_artifacts(self.run_id, str(local_dir), artifact_path)

    def log_artifact(self, path: str | Path) -> None:
        self.flush()
        self.client.log_artifact(self.run_id, str(path))

    def end(self, status: str = "FINISHED") -> None:
        if self._monitor is not None:
            monitor, self._monitor = self._monitor, None
            monitor.finish()
            if getattr(monitor, "_logging_step", 1) == 0:  # a run shorter than one interval: its collected sample
                monitor.publish_metrics(monitor.aggregate_metrics())
                monitor.mlflow_logger.flush()
        if self.run_id is not None:
            self.flush()
            self.client.set_terminated(self.run_id, status)
            log.info("browse: %s", self.browse_hint())

    def browse_hint(self) -> str:
        """How to open this run's experiment on its runs table. MLflow 3.17's UI picks an experiment's first page
        by its GenAI / Model training switch (default GenAI, remembered by the browser), not by the experiment's
        kind tag; the URL parameter ``workflowType=machine_learning`` sets the switch."""
        page = f"#/experiments/{self.experiment_id}/runs?workflowType=machine_learning"
        if self.tracking_uri.startswith(("http://", "https://")):
            return f"{self.tracking_uri.rstrip('/')}/{page}"
        return f"mlflow ui --backend-store-uri {self.tracking_uri}, then http://127.0.0.1:5000/{page}"

    def lightning_logger(self):
        """A Lightning logger writing per-epoch metrics into this same run, sent every ``epoch_metrics_flush_s``
        seconds and at the end of training (:class:`~mmbench.tracking.lightning_mlflow.BufferedMLFlowLogger`)."""
        from mmbench.tracking.lightning_mlflow import BufferedMLFlowLogger

        return BufferedMLFlowLogger(self.tracking_uri, self.run_id, self.epoch_metrics_flush_s)

    def _start_system_metrics(self) -> None:
        """``logger.system_metrics``: MLflow's monitor samples CPU, memory, disk, network (and GPU when
        ``pynvml`` / ``pyrsmi`` is installed) every ``system_metrics_interval_s`` into ``system/*`` metrics."""
        try:
            import psutil  # noqa: F401  (the monitor needs it and would only log a warning without it)
        except ImportError as e:
            raise TrackingError("logger.system_metrics=true needs psutil: pip install psutil") from e
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self._monitor = SystemMetricsMonitor(
            self.run_id, sampling_interval=self.system_metrics_interval_s, tracking_uri=self.tracking_uri
        )
        self._monitor.start()

    def log_inputs(self, parts: list[DataPart]) -> None:
        """Each part as an MLflow dataset input (``mlflow.data`` metadata dataset: name, digest, the part's file
        as a local source, schema of that file, row / user / item counts as profile; context tag ``train`` /
        ``val`` / ``test``): the runs table's Dataset column, ``dataset.name`` / ``dataset.digest`` /
        ``dataset.context`` in ``mlflow.search_runs`` filters."""
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.data.sources import LocalArtifactDatasetSource
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.types import ColSpec, Schema
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        class _Part(MetaDataset):
            def __init__(self, part: DataPart) -> None:
                self._profile = part.profile
                schema = Schema([ColSpec("string", c) for c in ("user", "item", "rating", "timestamp")])
                super().__init__(LocalArtifactDatasetSource(part.source), part.name, part.digest, schema)

            @property
            def profile(self) -> dict[str, int]:
                return self._profile

            def to_dict(self) -> dict[str, str]:
                return super().to_dict() | {"profile": json.dumps(self._profile)}

        inputs = [
            DatasetInput(_Part(p)._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, p.context)])
            for p in parts
        ]
        for attempt in range(3):
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
                return
            except Exception as e:
                # runs of one split logged at once through a shared server: both insert the new dataset and one loses
                # on its key; the dataset exists then, and the next attempt only links it to the run
                if attempt == 2 or not any(m in str(e) for m in DUPLICATE_KEY):
                    raise
                log.info("dataset inputs: a parallel run created the same dataset, logging again (%s)", e)

    def log_model(self, topk: TopK) -> dict[str, float]:
        """``logger.log_model``: the fitted recommender as a pyfunc model ``model`` of the run (see
        :mod:`mmbench.tracking.mlflow_model`), unless its pickle exceeds ``model_size_cap_mb`` (then a warning
        and the tag ``mmbench.model_not_logged``); with ``register_as``, also a new version of that registered
        model. Returns ``model/size_mb`` and ``time/log_model_s``."""
        if not self.log_models:
            return {}
        import tempfile
        import time

        from mmbench.tracking import mlflow_model

        t = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="mmbench-model-") as tmp:
            state = Path(tmp) / "topk.pkl"
            size_mb = mlflow_model.save_state(topk, state) / 2**20
            if size_mb > self.model_size_cap_mb:
                log.warning("model not logged: %.1f MB > logger.model_size_cap_mb=%g", size_mb, self.model_size_cap_mb)
                self.set_tags({"mmbench.model_not_logged": f"{size_mb:.1f} MB > cap {self.model_size_cap_mb:g} MB"})
                return {"model/size_mb": size_mb}
            model_id = self._log_pyfunc(topk, state, Path(tmp) / "model")
        self.set_tags({"mmbench.model_uri": f"models:/{model_id}"})
        return {"model/size_mb": size_mb, "time/log_model_s": time.perf_counter() - t}

    def _log_pyfunc(self, topk: TopK, state: Path, folder: Path) -> str:
        """What ``mlflow.pyfunc.log_model`` does, through this tracker's client: a logged model in the run's
        experiment (``log_model`` puts it in the active experiment instead, and copies every param and metric
        history into it), the run's output, its files, READY; with ``register_as`` a registered version.
        Returns the model id."""
        import mlflow.pyfunc
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model

        from mmbench.tracking import mlflow_model

        logged = self.client.create_logged_model(
            self.experiment_id, name="model", source_run_id=self.run_id, model_type="recommender"
        )
        try:
            self.client.log_outputs(self.run_id, [LoggedModelOutput(logged.model_id, step=0)])
            with quiet_save():
                mlflow.pyfunc.save_model(
                    path=str(folder),
                    python_model=mlflow_model.TopKModel(),
                    artifacts={"topk": str(state)},
                    signature=mlflow_model.signature(topk),
                    pip_requirements=list(mlflow_model.requirements()),
                    mlflow_model=Model(run_id=self.run_id, model_id=logged.model_id, model_uuid=logged.model_id),
                )
            self.client.log_model_artifacts(logged.model_id, str(folder))
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            raise
        self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        if self.register_as:
            self._register(logged.model_id)
        return logged.model_id

    def _register(self, model_id: str) -> None:
        """A new version of the registered model ``register_as`` (created on first use) from the logged model."""
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(self.register_as)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":  # a parallel job or an earlier run made it
                raise
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.tracking_uri)  # MLflow's registry finds the logged model through the global URI
        try:
            self.client.create_model_version(
                self.register_as, f"models:/{model_id}", run_id=self.run_id, model_id=model_id
            )
        finally:
            mlflow.set_tracking_uri(previous)


@contextmanager
def quiet_save() -> Iterator[None]:
    """Saving a pyfunc model without what costs a run time or fills its terminal: MLflow's check that the pinned
    requirements match the environment (they are read from it, :func:`mlflow_model.requirements`; the check
    maps every installed distribution's files, 2.5 s on the first model of a process), the progress bar of
    copying the one artifact, the warnings that a Python object is pickled (the class is mmbench's own) and
    that no input example was given (the signature is explicit)."""
    import warnings

    from mlflow.utils import environment

    logger = logging.getLogger("mlflow.pyfunc")
    level, bar = logger.level, os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    check = getattr(environment, "warn_dependency_requirement_mismatches", None)
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    if check is not None:
        environment.warn_dependency_requirement_mismatches = lambda requirements: None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            yield
    finally:
        if check is not None:
            environment.warn_dependency_requirement_mismatches = check
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def source_tags(tags: dict[str, str]) -> dict[str, str]:
    """MLflow's system tags for the runs table's Source, Version and User columns, from mmbench's ``command``
    and ``git_commit`` tags: source name the command line, type ``LOCAL``, git commit the bare hash (the
    ``git_commit`` tag keeps its ``-dirty`` suffix)."""
    import getpass

    out = {"mlflow.source.type": "LOCAL"}
    if tags.get("command"):
        argv = tags["command"].split(" ")
        program = "mmbench" if argv[0].endswith("mmbench/__main__.py") else Path(argv[0]).name  # python -m mmbench
        out["mlflow.source.name"] = " ".join([program, *argv[1:]])
    commit = tags.get("git_commit", "unknown").removesuffix("-dirty")
    if commit != "unknown":
        out["mlflow.source.git.commit"] = commit
    try:
        out["mlflow.user"] = getpass.getuser()
    except (KeyError, OSError):
        pass
    return out
