"""Features a user brings (``.npy`` + ids, or parquet keyed by raw id) and numeric content passed through."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder


class PrecomputedEncoder(Encoder):
    """Item features read from a file, keyed by raw item id; items absent from the file are masked.

    * ``.npy``: a ``(rows, dim)`` array, with ``ids_path`` (a ``.npy`` or one-id-per-line text file) naming
      each row's raw item id; without ``ids_path`` row ``k`` is the ``k``-th item in sorted raw-id order
      (the dataset's contiguous order), and the row count must match.
    * ``.parquet``: column ``id_column`` plus either one list/array column ``feature_column`` or all other
      numeric columns.
    The modality needs no content in the dataset (``dataset.content`` may lack it).
    """

    def __init__(
        self, path: str, ids_path: str | None = None, id_column: str = "id", feature_column: str | None = None
    ) -> None:
        for p in (path, ids_path):
            if p is not None and not Path(p).expanduser().is_file():
                raise FileNotFoundError(f"encoder: feature file {p!r} does not exist")
        if not str(path).endswith((".npy", ".parquet")):
            raise ValueError(f"encoder.path={path!r}: expected a .npy or .parquet file")
        self.path, self.ids_path, self.id_column, self.feature_column = path, ids_path, id_column, feature_column

    def config(self) -> dict:
        cfg = super().config()
        for k in ("path", "ids_path"):  # the files' bytes, not their names, change the output
            if cfg[k] is not None:
                cfg[k + "_sha256"] = hashlib.sha256(Path(cfg[k]).expanduser().read_bytes()).hexdigest()
        return cfg

    def _read(self) -> tuple[np.ndarray | None, np.ndarray]:
        path = Path(self.path).expanduser()
        if path.suffix == ".npy":
            x = np.load(path)
            if x.ndim != 2:
                raise ValueError(f"{path}: expected a 2-d array (rows, dim), got shape {x.shape}")
            if self.ids_path is None:
                return None, x
            ip = Path(self.ids_path).expanduser()
            ids = np.load(ip, allow_pickle=False) if ip.suffix == ".npy" else np.loadtxt(ip, dtype=str, ndmin=1)
            if len(ids) != len(x):
                raise ValueError(f"{ip}: {len(ids)} ids for {len(x)} rows of {path}")
            return np.asarray(ids), x
        df = pd.read_parquet(path)
        if self.id_column not in df:
            raise ValueError(f"{path}: no column {self.id_column!r} (columns: {list(df.columns)})")
        if self.feature_column is not None:
            if self.feature_column not in df:
                raise ValueError(f"{path}: no column {self.feature_column!r} (columns: {list(df.columns)})")
            x = np.stack(df[self.feature_column].to_numpy())
        else:
            x = df.drop(columns=[self.id_column]).select_dtypes("number").to_numpy()
        return df[self.id_column].to_numpy(), x

    def _aligned(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids, x = self._read()
        if ids is None:
            if len(x) != len(item_ids):
                raise ValueError(f"{self.path}: {len(x)} rows but the dataset has {len(item_ids)} items; give ids_path")
            return x.astype(np.float32), np.ones(len(item_ids), bool)
        try:
            ids = ids.astype(np.asarray(item_ids).dtype)
        except ValueError:
            ids = ids.astype(str)
            item_ids = np.asarray(item_ids).astype(str)
        row = pd.Index(ids).get_indexer(item_ids)
        out = np.zeros((len(item_ids), x.shape[1]), np.float32)
        out[row >= 0] = x[row[row >= 0]]
        return out, row >= 0

    def extract(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        return self._aligned(item_ids)[0]

    def mask(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        return self._aligned(item_ids)[1]


class MultiHotEncoder(Encoder):
    """Numeric content (e.g. the genres multi-hot) used as it is, as float32."""

    def __init__(self, normalize: bool = False) -> None:
        self.normalize = normalize

    def extract(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        x = np.asarray(content.values, np.float32).reshape(len(content.mask), -1).copy()
        x[~np.asarray(content.mask, bool)] = 0
        if self.normalize:
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x
