"""Features a user brings (``.npy`` + ids, or parquet keyed by raw id) and numeric content passed through."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder

log = logging.getLogger(__name__)


class PrecomputedEncoder(Encoder):
    """Item (or user) features read from a file, keyed by raw item (or user) id; ids absent from the file are
    masked.

    * ``.npy``: a ``(rows, dim)`` array, with ``ids_path`` (a ``.npy`` or one-id-per-line text file) naming
      each row's raw id; without ``ids_path`` row ``k`` is the ``k``-th item (user) in sorted raw-id order
      (the dataset's contiguous order), and the row count must match.
    * ``.parquet``: column ``id_column`` plus either one list/array column ``feature_column`` or all other
      numeric columns.
    The modality needs no content in the dataset. A file that cannot describe the dataset (duplicate ids,
    no id of the dataset at all, non-finite values, ...) fails naming the file and the problem; the number of
    masked rows and of the file's ids unknown to the dataset is logged.
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
                return None, self._numeric(x)
            ip = Path(self.ids_path).expanduser()
            ids = np.load(ip, allow_pickle=False) if ip.suffix == ".npy" else np.loadtxt(ip, dtype=str, ndmin=1)
            if len(ids) != len(x):
                raise ValueError(f"{ip}: {len(ids)} ids for {len(x)} rows of {path}")
            return np.asarray(ids), self._numeric(x)
        df = pd.read_parquet(path)
        if self.id_column not in df:
            raise ValueError(f"{path}: no column {self.id_column!r} (columns: {list(df.columns)})")
        if self.feature_column is not None:
            if self.feature_column not in df:
                raise ValueError(f"{path}: no column {self.feature_column!r} (columns: {list(df.columns)})")
            lengths = sorted(df[self.feature_column].map(len).unique().tolist())
            if len(lengths) > 1:
                raise ValueError(
                    f"{path}: column {self.feature_column!r} holds vectors of lengths {lengths}; "
                    "every row needs the same length"
                )
            x = np.stack(df[self.feature_column].to_numpy())
        else:
            x = df.drop(columns=[self.id_column]).select_dtypes("number").to_numpy()
            if x.shape[1] == 0:
                raise ValueError(f"{path}: no numeric column besides {self.id_column!r} (columns: {list(df.columns)})")
        return df[self.id_column].to_numpy(), self._numeric(x)

    def _numeric(self, x: np.ndarray) -> np.ndarray:
        path = Path(self.path).expanduser()
        try:
            x = np.asarray(x, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: features are not numeric (dtype {x.dtype})") from None
        bad = np.flatnonzero(~np.isfinite(x).all(1))
        if len(bad):
            raise ValueError(f"{path}: {len(bad)} rows hold NaN or infinite values (first: row {bad[0]})")
        return x

    def _aligned(self, content: ItemContent, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Features aligned to the dataset's raw ``ids``, the mask of ids found, and the file's unknown ids."""
        file_ids, x = self._read()
        entity = getattr(content, "entity", "item")
        noun = f"{entity}s"
        if file_ids is None:
            if len(x) != len(ids):
                raise ValueError(f"{self.path}: {len(x)} rows but the dataset has {len(ids)} {noun}; give ids_path")
            return x, np.ones(len(ids), bool), 0
        try:
            file_ids = file_ids.astype(np.asarray(ids).dtype)
        except (TypeError, ValueError):
            file_ids = file_ids.astype(str)
            ids = np.asarray(ids).astype(str)
        index = pd.Index(file_ids)
        if not index.is_unique:
            dup = index[index.duplicated()].tolist()
            raise ValueError(f"{self.path}: {len(dup)} duplicate ids (first: {dup[0]!r}); each id needs one row")
        row = index.get_indexer(ids)
        found = row >= 0
        if len(ids) and not found.any():
            raise ValueError(
                f"{self.path}: none of its {len(file_ids)} ids is a {entity} id of the dataset (file ids "
                f"{file_ids[:3].tolist()}, dataset {noun} {np.asarray(ids)[:3].tolist()}): wrong file or id column?"
            )
        out = np.zeros((len(ids), x.shape[1]), np.float32)
        out[found] = x[row[found]]
        return out, found, len(file_ids) - int(found.sum())

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        return self._aligned(content, item_ids)[0]

    def mask(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        _, found, unknown = self._aligned(content, item_ids)
        log.info(
            "%s: %d of %d %ss have features, %d masked; %d ids of the file are not in the dataset",
            self.path,
            found.sum(),
            len(found),
            getattr(content, "entity", "item"),
            (~found).sum(),
            unknown,
        )
        return found


class MultiHotEncoder(Encoder):
    """Numeric content (e.g. the genres multi-hot, the synthetic users' profile) used as it is, as float32."""

    def __init__(self, normalize: bool = False) -> None:
        self.normalize = normalize

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(content.values, np.float32).reshape(len(content.mask), -1).copy()
        x[~np.asarray(content.mask, bool)] = 0
        if self.normalize:
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return x
