"""``logger=none``: a run without any tracking store."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from mmbench.tracking.base import DataPart
    from mmbench.tracking.recommender_model import TopK

log = logging.getLogger(__name__)


class NullTracker:
    """Records nothing: no store, no files; artifacts (per-user metrics, recommendations, the split copy) are
    dropped. The metrics still reach the caller (``mmbench`` prints the validation / test table); use
    ``logger=csv`` to keep files without a tracking server. The run id is a fresh random id."""

    kind: ClassVar[str] = "untracked"

    def __init__(self, run_name: str | None = None) -> None:
        self.run_name = run_name
        self.run_id: str | None = None

    def start(self, run_name: str | None = None, tags: dict[str, str] | None = None) -> str:
        self.run_id = uuid.uuid4().hex
        log.info("logger=none: run %s is not tracked and keeps no artifacts", run_name or self.run_name or "")
        return self.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        pass

    def set_tags(self, tags: dict[str, Any]) -> None:
        pass

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        pass

    def log_artifact(self, path: str | Path) -> None:
        pass

    def end(self, status: str = "FINISHED") -> None:
        pass

    @property
    def artifact_uri(self) -> str:
        return ""

    def lightning_logger(self) -> bool:
        return False

    def log_inputs(self, parts: list[DataPart]) -> None:
        pass

    def log_model(self, topk: TopK) -> dict[str, float]:
        return {}
