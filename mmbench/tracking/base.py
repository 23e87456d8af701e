"""The tracker interface the pipeline logs through (``conf/logger``: ``mlflow``, ``csv``, ``none``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # Lightning is imported only by runs that train a neural model
    from pytorch_lightning.loggers import Logger

if TYPE_CHECKING:
    from mmbench.tracking.recommender_model import TopK


class TrackingError(RuntimeError):
    """The tracking store cannot be used."""


@dataclass(frozen=True)
class DataPart:
    """One part of a run's data as a tracker records it (an MLflow dataset input): what it is called, its
    digest, where it is (a path, never the data) and what the run used it for."""

    name: str  # the dataset, e.g. "ml100k"
    digest: str  # the split's fingerprint prefix and the part: identical for every run on the same split
    source: str  # the saved split file of the part
    context: str  # "train", "val", "test"
    profile: dict[str, int]  # rows, users, items


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

    def log_inputs(self, parts: list[DataPart]) -> None:
        """Record the data the run used (MLflow: dataset inputs, the runs table's Dataset column)."""

    def log_model(self, topk: TopK) -> dict[str, float]:
        """Record the fitted recommender with what ranks its test top-K (MLflow: a pyfunc model); returns facts
        to log as metrics (empty when nothing was recorded)."""
