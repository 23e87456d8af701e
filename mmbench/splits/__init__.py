"""Splitting a dataset into train/val/test once, saved under a fingerprint and reused."""

from mmbench.splits.base import Split, Splitter, load_or_create

__all__ = ["Split", "Splitter", "load_or_create"]
