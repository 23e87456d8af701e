"""Experiment tracking."""

from mmbench.tracking.mlflow_tracker import MLflowTracker, TrackingError

__all__ = ["MLflowTracker", "TrackingError"]
