"""``dataset=mmrec``: a dataset folder in MMRec's format (Zhou 2023, the toolbox behind FREEDOM, BM3, LGMRec, ...).

Layout (``path``, dataset ``name`` = the folder's name unless given)::

    <name>.inter      tab-separated, header "userID itemID rating timestamp x_label" (ids are indices 0..n-1;
                      x_label 0 train, 1 val, 2 test)
    image_feat.npy    row k = features of item k; text_feat.npy likewise; any other *_feat.npy (TikTok's
                      audio / video) too: each becomes the precomputed modality named by its stem

The raw ids are MMRec's integer ids (so feature row k is item k). ``x_label`` is the dataset's published split:
``split=predefined_column`` (or ``split=published``) uses it. The catalogue is every item id of the file plus
every feature row (an item with features but no event stays a candidate).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mmbench.data.base import DatasetLoader
from mmbench.data.interactions import Dataset, build_dataset
from mmbench.data.lattice import feature_modalities, resolve_folder
from mmbench.data.readers import DataFormatError, file_sha256
from mmbench.data.streaming import numeric, read_header, read_table, required_ids, row_line

log = logging.getLogger(__name__)

COLUMNS = ("userID", "itemID", "rating", "timestamp", "x_label")


class MMRec(DatasetLoader):
    """An MMRec folder: ``<name>.inter`` with its ``x_label`` split, and ``*_feat.npy`` item features."""

    name = "mmrec"

    def __init__(self, path: str | None, name: str | None = None) -> None:
        self.path, self.name = path, name

    def read(self) -> Dataset:
        root = resolve_folder(self.path, "dataset mmrec")
        name = self.name or root.name
        path = root / f"{name}.inter"
        if not path.is_file():
            found = sorted(p.name for p in root.glob("*.inter"))
            raise FileNotFoundError(f"{path} not found (dataset.name={name!r}; .inter files there: {found})")
        header = read_header(path, "\t")
        missing = [c for c in ("userID", "itemID", "x_label") if c not in header]
        if missing:
            raise DataFormatError(f"{path}: line 1: no column {missing[0]!r} in header {header} (expected {COLUMNS})")
        cols = [c for c in COLUMNS if c in header]
        table = read_table(path, "tsv", cols)
        users = required_ids(table, "userID", path, "tsv")
        items = required_ids(table, "itemID", path, "tsv")
        for col, ids in (("userID", users), ("itemID", items)):
            if ids.dtype.kind != "i" or (len(ids) and ids.min() < 0):
                row = int(np.flatnonzero(pd.to_numeric(pd.Series(ids), errors="coerce").fillna(-1) < 0)[0])
                raise DataFormatError(f"{path}: {row_line(path, 'tsv', row)}: {col} = {ids[row]!r} is not an index")
        n = len(users)
        ratings = numeric(table, "rating", path, "tsv", np.float32) if "rating" in cols else np.ones(n, np.float32)
        ts = numeric(table, "timestamp", path, "tsv", np.int64) if "timestamp" in cols else np.zeros(n, np.int64)
        label = numeric(table, "x_label", path, "tsv", np.float64)
        bad = ~np.isin(label, (0, 1, 2))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{path}: {row_line(path, 'tsv', row)}: x_label = {label[row]:g}, expected 0, 1 or 2")
        feats = sorted(root.glob("*_feat.npy"))
        rows = {len(np.load(f, mmap_mode="r")) for f in feats}
        if len(rows) > 1:
            raise DataFormatError(f"{root}: the *_feat.npy files have different row counts {sorted(rows)}")
        n_rows = rows.pop() if rows else 0
        if feats and len(items) and items.max() >= n_rows:
            row = int(np.argmax(items))
            raise DataFormatError(
                f"{path}: {row_line(path, 'tsv', row)}: itemID {items[row]} has no row in the {n_rows}-row features"
            )
        catalogue = pd.DataFrame(index=pd.Index(np.arange(n_rows, dtype=np.int64)))
        ds = build_dataset(name, users, items, ratings, ts, None, catalogue)
        ds.source = root
        ds.files = {path.name: file_sha256(path), **{f.name: file_sha256(f) for f in feats}}
        ds.published_split = pd.DataFrame({"user": users, "item": items, "part": label.astype(np.int8)})
        ds.content = feature_modalities(root, np.arange(n_rows, dtype=np.int64), ds.item_ids) if feats else {}
        log.info(
            "%s: %d events, %d users, %d items; x_label train/val/test %s",
            path, n, ds.n_users, ds.n_items, np.bincount(label.astype(np.int64), minlength=3).tolist(),
        )  # fmt: skip
        return ds
