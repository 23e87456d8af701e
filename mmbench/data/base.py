"""The dataset-loader interface: a config-built object whose ``read()`` returns the data as published."""

from __future__ import annotations

from abc import ABC, abstractmethod

from mmbench.data.interactions import Dataset


class DatasetLoader(ABC):
    """Reads (or generates) a dataset; preprocessing is a separate stage (``conf/preprocess``)."""

    name: str

    @abstractmethod
    def read(self) -> Dataset:
        """The data as published, before preprocessing."""
