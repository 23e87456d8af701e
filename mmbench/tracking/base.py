"""The tracker interface the pipeline logs through (``conf/logger``: ``mlflow``, ``csv``, ``none``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # Lightning is imported only by runs that train a neural model
    from pytorch_lightning.loggers import Logger


class TrackingError(RuntimeError):
    """The tracking store cannot be used."""


class Tracker(Protocol):
    """One run: opened before any work (a bad store fails first), then params, tags, metrics, artifacts, end."""

    kind: ClassVar[str]  # what the CLI calls the run: "MLflow", "CSV", "untracked"
    run_id: str | None

    def start(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> str: ...

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None: ...

    def set_tags(self, tags: dict[str, Any]) -> None: ...

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Copy the files under ``local_dir`` into the run's artifacts (under ``artifact_path``)."""

    def log_artifact(self, path: str | Path) -> None:
        """Copy one file into the run's artifacts."""

    def end(self, status: str = "FINISHED") -> None: ...

    @property
    def artifact_uri(self) -> str:
        """Where the run's artifacts are (empty when nowhere)."""

    def lightning_logger(self) -> Logger | bool:
        """A Lightning logger writing per-epoch metrics into this run (False: none)."""
