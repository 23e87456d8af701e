"""``logger=csv``: each run is a folder of CSV files, no tracking server or database."""

from __future__ import annotations

import csv
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mmbench.evaluation.metrics import metric_key
from mmbench.tracking.base import DataPart, TrackingError

if TYPE_CHECKING:
    from pytorch_lightning.loggers import CSVLogger

    from mmbench.tracking.recommender_model import TopK


class CSVTracker:
    """Writes a run into ``<root>/<experiment>/<run_id>/``: ``params.csv`` and ``tags.csv`` (key, value),
    ``metrics.csv`` (key, value, step, timestamp in ms; keys named as in MLflow, ``@`` as ``_at_``),
    ``inputs.csv`` (the data parts: name, digest, source, context, rows, users, items), ``artifacts/`` (the
    same files an MLflow run gets, no model) and ``epochs/metrics.csv`` (per-epoch training and
    validation metrics of neural models). The run's name and status are the tags ``mmbench.run_name`` and
    ``mmbench.status``."""

    kind: ClassVar[str] = "CSV"

    def __init__(self, root: str, experiment: str = "mmbench", run_name: str | None = None) -> None:
        self.root, self.experiment, self.run_name = Path(root), experiment, run_name
        self.run_id: str | None = None
        self.dir: Path | None = None
        self._tags: dict[str, str] = {}

    def start(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
        run_id = uuid.uuid4().hex
        folder = self.root / self.experiment / run_id
        try:
            folder.mkdir(parents=True)
        except OSError as e:
            raise TrackingError(f"CSV run folder {folder} cannot be created: {e}") from e
        self.run_id, self.dir = run_id, folder
        self._tags = {}
        self.set_tags(
            {**(tags or {}), "mmbench.run_name": run_name or self.run_name or "", "mmbench.status": "RUNNING"}
        )
        return run_id

    def _append(self, name: str, header: list[str], rows: list[list[Any]]) -> None:
        path = self.dir / name
        new = not path.is_file()
        with open(path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(header)
            w.writerows(rows)

    def log_params(self, params: dict[str, Any]) -> None:
        self._append("params.csv", ["key", "value"], [[k, str(v)] for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        ts = int(time.time() * 1000)
        rows = [[metric_key(k), repr(float(v)), step, ts] for k, v in metrics.items()]
        self._append("metrics.csv", ["key", "value", "step", "timestamp"], rows)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set (or replace) tags; ``tags.csv`` always holds the current set."""
        self._tags.update({str(k): str(v) for k, v in tags.items()})
        with open(self.dir / "tags.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "value"])
            w.writerows(sorted(self._tags.items()))

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        dest = self.dir / "artifacts" / (artifact_path or "")
        shutil.copytree(local_dir, dest, dirs_exist_ok=True)

    def log_artifact(self, path: str | Path) -> None:
        (self.dir / "artifacts").mkdir(exist_ok=True)
        shutil.copy2(path, self.dir / "artifacts" / Path(path).name)

    def end(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.set_tags({"mmbench.status": status})

    @property
    def artifact_uri(self) -> str:
        return (self.dir / "artifacts").resolve().as_uri()

    def lightning_logger(self) -> CSVLogger:
        from pytorch_lightning.loggers import CSVLogger  # only neural runs need Lightning

        return CSVLogger(save_dir=str(self.dir), name="epochs", version="")

    def log_inputs(self, parts: list[DataPart]) -> None:
        header = ["name", "digest", "source", "context", *parts[0].profile] if parts else []
        self._append(
            "inputs.csv", header, [[p.name, p.digest, p.source, p.context, *p.profile.values()] for p in parts]
        )

    def log_model(self, topk: TopK) -> dict[str, float]:
        """Nothing: a model is an MLflow model (``logger=mlflow``); the top-K lists are in the artifacts."""
        return {}
