"""``dataset=lattice`` (and ``dataset=amazon_baby``): the JSON split folders of LATTICE, MICRO, MMSSL and MMHCL.

Layout (``path``)::

    5-core/train.json, val.json, test.json   {"<user index>": [item index, ...], ...}
    i_id_mapping.csv                          raw item id (asin) -> item index, header "asin itemID"
    u_id_mapping.csv                          raw user id -> user index, header "user_id userID"
    *_feat.npy                                optional: row k = features of item index k (as in MMRec)

The id maps may be tab- or comma-separated (detected from the header line); without them the indices are the
raw ids. The three files are the dataset's published split (``Dataset.published_split``): ``split=published``
(the default of ``dataset=amazon_baby`` and ``dataset=lattice``) uses it, and its fingerprint covers the files'
SHA-256. Events have rating 1 and timestamp 0 (the format has neither).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, ItemContent, build_dataset
from mmbench.data.readers import DataFormatError, file_sha256

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


def read_id_map(path: Path) -> np.ndarray:
    """Raw id of each index: ``out[k]`` is the raw id mapped to ``k``. Tab or comma separated, with a header,
    raw id first and index second (or a JSON object raw id -> index, as ``user2id.json``); every index ``0..n-1``
    exactly once, else the file and line are named."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
        df = pd.DataFrame({"raw": list(data), "index": [str(v) for v in data.values()]})
        path_desc = f"{path} (entry"
    else:
        with open(path, encoding="utf-8") as f:
            header = f.readline()
        sep = "\t" if "\t" in header else ","
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
        path_desc = f"{path}: line"
    if df.shape[1] != 2:
        raise DataFormatError(f"{path}: line 1: expected 2 columns (raw id, index), got {list(df.columns)}")
    raw, idx = df.columns
    index = pd.to_numeric(df[idx], errors="coerce")
    bad = index.isna() | (index < 0) | (index != index.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(f"{_where(path_desc, row)}: {idx!r} = {df[idx].iloc[row]!r} is not an index")
    index = index.to_numpy(np.int64)
    dup = pd.Index(index).duplicated()
    if dup.any() or (len(index) and index.max() != len(index) - 1):
        row = int(np.flatnonzero(dup)[0]) if dup.any() else int(np.argmax(index))
        raise DataFormatError(
            f"{_where(path_desc, row)}: index {index[row]}: the indices must be 0..{len(index) - 1}, each once"
        )
    out = np.empty(len(index), object)
    out[index] = df[raw].to_numpy(object)
    return out


def _where(desc: str, row: int) -> str:
    """``file: line N`` (row 0 is line 2, after the header) or ``file (entry N)`` for JSON maps."""
    return f"{desc} {row + 2}" if desc.endswith("line") else f"{desc} {row + 1})"


def read_json_parts(folder: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, str]]:
    """Per part, user and item indices of its events; file digests."""
    users, items, files = [], [], {}
    for part in PARTS:
        path = folder / f"{part}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: a LATTICE folder holds {', '.join(p + '.json' for p in PARTS)}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(data, dict):
            raise DataFormatError(f"{path}: expected an object of user index -> list of item indices")
        for key, value in data.items():
            if not key.lstrip("-").isdigit() or int(key) < 0:
                raise DataFormatError(f"{path}: key {key!r} is not a user index")
            if not isinstance(value, list) or not all(isinstance(v, int) and v >= 0 for v in value):
                raise DataFormatError(f"{path}: key {key!r}: expected a list of item indices, got {str(value)[:80]}")
        lengths = np.fromiter((len(v) for v in data.values()), np.int64, len(data))
        users.append(np.repeat(np.fromiter(map(int, data), np.int64, len(data)), lengths))
        items.append(np.fromiter((i for v in data.values() for i in v), np.int64, int(lengths.sum())))
        files[f"{folder.name}/{path.name}" if folder.name else path.name] = file_sha256(path)
    return users, items, files


def feature_modalities(folder: Path, raw_of_row: np.ndarray, item_ids: np.ndarray) -> dict[str, ItemContent]:
    """Every ``*_feat.npy`` of ``folder`` as a precomputed modality named by its stem (``image_feat``,
    ``text_feat``, ...): row ``k`` belongs to the item whose raw id is ``raw_of_row[k]``; aligned to the dataset's
    ``item_ids`` (items without a row, or with a non-finite row, are masked)."""
    out = {}
    pos = pd.Index(raw_of_row).get_indexer(item_ids)
    for path in sorted(folder.glob("*_feat.npy")):
        x = np.load(path, mmap_mode="r")
        if x.ndim != 2:
            raise DataFormatError(f"{path}: expected a 2-d array (items, dim), got shape {x.shape}")
        if len(x) != len(raw_of_row):
            raise DataFormatError(f"{path}: {len(x)} rows, but the item ids number {len(raw_of_row)} (row k = item k)")
        found = pos >= 0
        values = np.zeros((len(item_ids), x.shape[1]), np.float32)
        values[found] = np.asarray(x[pos[found]], np.float32)
        mask = found & np.isfinite(values).all(1)
        values[~mask] = 0
        out[path.stem] = ItemContent(path.stem, values, mask)
        log.info("%s: modality %s, %d-dim, %d of %d items", path, path.stem, x.shape[1], mask.sum(), len(mask))
    return out


def resolve_folder(path: str | None, what: str) -> Path:
    if path is None or str(path).startswith("None/"):
        raise FileNotFoundError(f"{what}: no folder given; set MMBENCH_DATA_DIR (or dataset.path)")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder {folder} not found (MMBENCH_DATA_DIR or dataset.path)")
    return folder


class Lattice(DatasetLoader):
    """A LATTICE-style folder: the published train/val/test split, the id maps and optional features."""

    name = "lattice"

    def __init__(
        self,
        path: str | None,
        split_dir: str = "5-core",
        item_map: str | None = "i_id_mapping.csv",
        user_map: str | None = "u_id_mapping.csv",
        name: str = "lattice",
    ) -> None:
        self.path, self.split_dir, self.item_map, self.user_map, self.name = path, split_dir, item_map, user_map, name

    def read(self) -> Dataset:
        root = resolve_folder(self.path, f"dataset {self.name}")
        users, items, files = read_json_parts(root / self.split_dir)
        part = np.concatenate([np.full(len(u), k, np.int8) for k, u in enumerate(users)])
        u, i = np.concatenate(users), np.concatenate(items)
        raw_items = self._map(root, self.item_map, i, "item", files)
        raw_users = self._map(root, self.user_map, u, "user", files)
        ru, ri = raw_users[u], raw_items[i]
        pairs = pd.DataFrame({"user": ru, "item": ri, "part": part})
        dup = pairs.duplicated(["user", "item"], keep="last")
        if dup.any():
            log.warning("%s: %d (user, item) pairs appear twice; the later part wins", root, int(dup.sum()))
        catalogue = pd.DataFrame(index=pd.Index(raw_items))
        ds = build_dataset(self.name, ru, ri, np.ones(len(u), np.float32), np.zeros(len(u), np.int64), None, catalogue)
        ds.source, ds.files = root, files
        ds.published_split = pairs
        ds.content = feature_modalities(root, raw_items, ds.item_ids)
        for f in root.glob("*_feat.npy"):
            files[f.name] = file_sha256(f)
        counts = np.bincount(part, minlength=3)
        log.info("%s: %d users, %d items, train/val/test %d/%d/%d", root, ds.n_users, ds.n_items, *counts)
        return ds

    @staticmethod
    def _map(root: Path, name: str | None, index: np.ndarray, what: str, files: dict[str, str]) -> np.ndarray:
        """Raw id per index (the index itself without a map); an index beyond the map fails naming both."""
        if name is None:
            return np.arange(int(index.max()) + 1 if len(index) else 0, dtype=np.int64)
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (dataset.{what}_map; null uses the indices as raw ids)")
        raw = read_id_map(path)
        files[name] = file_sha256(path)
        if len(index) and index.max() >= len(raw):
            raise DataFormatError(
                f"{path}: the split files use {what} index {index.max()}, the map ends at {len(raw) - 1}"
            )
        return raw
