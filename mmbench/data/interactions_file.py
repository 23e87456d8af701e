"""``dataset=interactions``: your own interaction file (CSV, TSV, JSON lines or Parquet, optionally compressed) with
a column mapping, plus optional item and user tables whose columns become modalities.

Item table columns: ``item_text_cols`` -> modality ``text`` (non-empty values joined by ``". "``),
``item_image_col`` -> modality ``image`` (a path relative to ``image_dir``, default the table's folder; a missing
file masks the item), ``item_feature_cols`` -> modality ``features`` (a numeric vector; a row with an empty or
non-finite value is masked). The user table gives ``text`` and ``features`` user modalities the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, UserContent, build_dataset
from mmbench.data.ml100k_mm import PosterImages
from mmbench.data.readers import DataFormatError, file_sha256
from mmbench.data.streaming import check_format, detect_format, numeric, read_table, required_ids, row_line, timestamps

log = logging.getLogger(__name__)


def align_ids(ids: np.ndarray, like: np.ndarray, path: Path, column: str) -> np.ndarray:
    """Side-table ids in the dtype of the interaction ids (int64 or str), so that they join."""
    if like.dtype.kind == "i" and ids.dtype.kind != "i":
        try:
            return np.asarray(ids).astype(np.int64)
        except (TypeError, ValueError):
            raise DataFormatError(
                f"{path}: column {column!r} holds ids like {ids[0]!r}, the interactions hold integer ids"
            ) from None
    if like.dtype.kind != "i" and ids.dtype.kind == "i":
        return ids.astype(str).astype(object)
    return ids


def indexed(ids: np.ndarray, columns: dict[str, np.ndarray], path: Path, fmt: str, column: str) -> pd.DataFrame:
    """A side table indexed by raw id; a repeated id fails naming the file and the line of the repeat."""
    index = pd.Index(ids, name=None)
    dup = index.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataFormatError(f"{path}: {row_line(path, fmt, row)}: {column!r} = {ids[row]!r} repeats an earlier row")
    return pd.DataFrame(columns, index=index)


def join_texts(table: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Per row: the non-empty values of ``columns`` joined by ``". "``, and whether there was any."""
    parts = [table[c].astype(object).where(table[c].notna(), "").astype(str).str.strip() for c in columns]
    texts = parts[0] if len(parts) == 1 else pd.concat(parts, axis=1).agg(lambda r: ". ".join(v for v in r if v), 1)
    texts = texts.astype(str).tolist()
    return texts, np.array([bool(t) for t in texts])


def image_paths(values: pd.Series, folder: Path) -> tuple[list[Path | None], np.ndarray]:
    """Per row: the image file (``folder / value``) if it exists, else None (masked)."""
    paths: list[Path | None] = []
    for v in values.astype(object):
        p = folder / str(v) if isinstance(v, str) and v else None
        paths.append(p if p is not None and p.is_file() else None)
    mask = np.array([p is not None for p in paths], bool)
    return paths, mask


def feature_matrix(table: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    x = table[list(columns)].to_numpy(np.float64)
    ok = np.isfinite(x).all(1)
    x = np.where(ok[:, None], x, 0.0).astype(np.float32)
    return x, ok


class InteractionsFile(DatasetLoader):
    """Events from one file with columns ``user_col``, ``item_col`` and optionally ``rating_col`` (else 1.0)
    and ``timestamp_col`` (numbers, or dates parsed as UTC; else 0); optional item and user side tables."""

    name = "interactions"

    def __init__(
        self,
        path: str,
        format: str | None = None,
        sep: str | None = None,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str | None = None,
        timestamp_col: str | None = None,
        name: str = "interactions",
        item_path: str | None = None,
        item_format: str | None = None,
        item_id_col: str = "item",
        item_text_cols: Sequence[str] = (),
        item_image_col: str | None = None,
        image_dir: str | None = None,
        image_size: int = 224,
        item_feature_cols: Sequence[str] = (),
        user_path: str | None = None,
        user_format: str | None = None,
        user_id_col: str = "user",
        user_text_cols: Sequence[str] = (),
        user_feature_cols: Sequence[str] = (),
    ) -> None:
        for key, fmt in (("format", format), ("item_format", item_format), ("user_format", user_format)):
            if fmt is not None:
                check_format(fmt, f"dataset.{key}")
        if item_path is None and (item_text_cols or item_image_col or item_feature_cols):
            raise ValueError("dataset.item_text_cols / item_image_col / item_feature_cols need dataset.item_path")
        if user_path is None and (user_text_cols or user_feature_cols):
            raise ValueError("dataset.user_text_cols / user_feature_cols need dataset.user_path")
        if image_size < 8:
            raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
        self.path, self.format, self.sep = path, format, sep
        self.user_col, self.item_col = user_col, item_col
        self.rating_col, self.timestamp_col = rating_col, timestamp_col
        self.name = name
        self.item_path, self.item_format, self.item_id_col = item_path, item_format, item_id_col
        self.item_text_cols, self.item_image_col = list(item_text_cols), item_image_col
        self.image_dir, self.image_size, self.item_feature_cols = image_dir, image_size, list(item_feature_cols)
        self.user_path, self.user_format, self.user_id_col = user_path, user_format, user_id_col
        self.user_text_cols, self.user_feature_cols = list(user_text_cols), list(user_feature_cols)

    def read(self) -> Dataset:
        path = Path(self.path).expanduser()
        fmt = self.format or detect_format(path)
        cols = [c for c in (self.user_col, self.item_col, self.rating_col, self.timestamp_col) if c is not None]
        if len(set(cols)) != len(cols):
            raise ValueError(f"dataset: the column mapping names a column twice: {cols}")
        # ids as text first, so that "007" stays "007"; a column of plain integers becomes int64 (fast joins)
        table = read_table(path, fmt, cols, self.sep, (self.user_col, self.item_col))
        users = required_ids(table, self.user_col, path, fmt, int_if_canonical=True)
        items = required_ids(table, self.item_col, path, fmt, int_if_canonical=True)
        n = table.num_rows
        ratings = numeric(table, self.rating_col, path, fmt, np.float32) if self.rating_col else np.ones(n, np.float32)
        ts = timestamps(table, self.timestamp_col, path, fmt) if self.timestamp_col else np.zeros(n, np.int64)
        del table
        files = {path.name: file_sha256(path)}
        item_table = user_table = None
        if self.item_path:
            item_table = self._side(
                self.item_path, self.item_format, self.item_id_col, items, self.item_text_cols,
                [self.item_image_col] if self.item_image_col else [], self.item_feature_cols, files,
            )  # fmt: skip
        if self.user_path:
            user_table = self._side(
                self.user_path, self.user_format, self.user_id_col, users, self.user_text_cols, [],
                self.user_feature_cols, files,
            )  # fmt: skip
        ds = build_dataset(self.name, users, items, ratings, ts, user_table, item_table)
        ds.source = path.parent
        ds.files = files
        if item_table is not None:
            ds.content = self._modalities(ds.item_table, self.item_text_cols, self.item_feature_cols, ItemContent)
            if self.item_image_col:
                folder = Path(self.image_dir).expanduser() if self.image_dir else Path(self.item_path).parent
                paths, mask = image_paths(ds.item_table[self.item_image_col], folder)
                log.info("%s: images for %d of %d items (folder %s)", self.item_path, mask.sum(), len(mask), folder)
                ds.content["image"] = ItemContent("image", PosterImages(paths, self.image_size), mask)
        if user_table is not None:
            ds.user_content = self._modalities(ds.user_table, self.user_text_cols, self.user_feature_cols, UserContent)
        log.info("%s: %d events, %d users, %d items", path, len(ds.interactions), ds.n_users, ds.n_items)
        return ds

    def _side(
        self,
        file: str,
        fmt: str | None,
        id_col: str,
        like: np.ndarray,
        text_cols: list[str],
        string_cols: list[str],
        feature_cols: list[str],
        files: dict[str, str],
    ) -> pd.DataFrame:
        path = Path(file).expanduser()
        fmt = fmt or detect_format(path)
        cols = list(dict.fromkeys([id_col, *text_cols, *string_cols, *feature_cols]))
        strings = (id_col, *text_cols, *string_cols)
        table = read_table(path, fmt, cols, self.sep if fmt in ("csv", "tsv") else None, strings)
        ids = align_ids(required_ids(table, id_col, path, fmt, int_if_canonical=True), like, path, id_col)
        data: dict[str, np.ndarray] = {}
        for c in cols[1:]:
            if c in feature_cols:
                data[c] = _feature_column(table, c, path, fmt)
            else:
                data[c] = table.column(c).to_numpy(zero_copy_only=False)
        files[path.name] = file_sha256(path)
        return indexed(ids, data, path, fmt, id_col)

    @staticmethod
    def _modalities(
        table: pd.DataFrame, text_cols: list[str], feature_cols: list[str], kind: type[ItemContent]
    ) -> dict[str, ItemContent]:
        out: dict[str, ItemContent] = {}
        if text_cols:
            texts, mask = join_texts(table, text_cols)
            out["text"] = kind("text", texts, mask)
        if feature_cols:
            x, mask = feature_matrix(table, feature_cols)
            out["features"] = kind("features", x, mask)
        for m, c in out.items():
            log.info("%s modality %s: %d of %d have content", kind.entity, m, c.mask.sum(), len(c.mask))
        return out


def _feature_column(table: pa.Table, column: str, path: Path, fmt: str) -> np.ndarray:
    """A numeric side column; empty cells are allowed (the row is masked), text that is not a number is not."""
    col = table.column(column)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        raw = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        num = pd.to_numeric(raw.replace("", None), errors="coerce")
        bad = num.isna() & raw.notna() & (raw != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(f"{path}: {row_line(path, fmt, row)}: {column!r} = {raw.iloc[row]!r} is not a number")
        return num.to_numpy(np.float64)
    return pd.Series(col.to_numpy(zero_copy_only=False)).astype(np.float64).to_numpy()
