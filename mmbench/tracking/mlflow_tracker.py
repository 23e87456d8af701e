"""MLflow tracking: one run per pipeline run, opened before any work so a bad store fails first."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mmbench.evaluation.metrics import metric_key
from mmbench.tracking.base import TrackingError

log = logging.getLogger(__name__)

# An unreachable server should fail in seconds, not after MLflow's default minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


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
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_dir = artifact_dir
        self.run_name = run_name
        self.client: MlflowClient | None = None
        self.run_id: str | None = None
        self._artifact_uri: str | None = None
        self._params: list[Param] = []  # logged with the next metrics, artifacts or end: one log_batch call
        self._tags: dict[str, RunTag] = {}

    @property
    def is_local(self) -> bool:
        return self.tracking_uri.startswith(("sqlite:", "file:")) or "://" not in self.tracking_uri

    def start(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
        """Create (or find) the experiment and open a run; raise :class:`TrackingError` if the store fails."""
        try:
            with self._init_lock():
                self.client = MlflowClient(tracking_uri=self.tracking_uri)
                exp_id = self._experiment_id()
            run = self.client.create_run(exp_id, run_name=run_name or self.run_name, tags=tags or {})
        except Exception as e:  # MLflow raises many types for an unusable store
            raise TrackingError(f"MLflow store {self.tracking_uri!r} is not usable: {e}") from e
        self.run_id, self._artifact_uri = run.info.run_id, run.info.artifact_uri
        self._params, self._tags = [], {}
        return self.run_id

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
            return exp.experiment_id
        location = None
        if self.artifact_dir and self.is_local:
            location = (Path(self.artifact_dir).expanduser().resolve() / self.experiment).as_uri()
        try:
            return self.client.create_experiment(self.experiment, artifact_location=location)
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
        if self.run_id is not None:
            self.flush()
            self.client.set_terminated(self.run_id, status)

    def lightning_logger(self):
        """A Lightning logger writing per-epoch metrics into this same run."""
        from pytorch_lightning.loggers import MLFlowLogger

        return MLFlowLogger(tracking_uri=self.tracking_uri, run_id=self.run_id)
