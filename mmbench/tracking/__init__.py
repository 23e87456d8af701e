"""Experiment tracking: one interface (:class:`Tracker`), MLflow, CSV files, or nothing (``conf/logger``).

The MLflow and CSV trackers are imported on first use (``mmbench.tracking.MLflowTracker``): importing MLflow
costs about a second, which a run with ``logger=none`` does not pay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmbench.tracking.base import Tracker, TrackingError
from mmbench.tracking.null_tracker import NullTracker

if TYPE_CHECKING:
    from mmbench.tracking.csv_tracker import CSVTracker
    from mmbench.tracking.mlflow_tracker import MLflowTracker

__all__ = ["CSVTracker", "MLflowTracker", "NullTracker", "Tracker", "TrackingError"]


def __getattr__(name: str) -> Any:
    if name == "MLflowTracker":
        from mmbench.tracking.mlflow_tracker import MLflowTracker

        return MLflowTracker
    if name == "CSVTracker":
        from mmbench.tracking.csv_tracker import CSVTracker

        return CSVTracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
