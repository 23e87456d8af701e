"""Experiment tracking: one interface (:class:`Tracker`), MLflow, CSV files, or nothing (``conf/logger``)."""

from mmbench.tracking.base import Tracker, TrackingError
from mmbench.tracking.csv_tracker import CSVTracker
from mmbench.tracking.mlflow_tracker import MLflowTracker
from mmbench.tracking.null_tracker import NullTracker

__all__ = ["CSVTracker", "MLflowTracker", "NullTracker", "Tracker", "TrackingError"]
