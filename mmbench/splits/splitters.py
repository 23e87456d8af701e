"""The splitters: per-user random, global temporal, leave-last-out, cold items, cold users, k-fold, predefined
files/column."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.data.interactions import Dataset
from mmbench.data.readers import read_delimited
from mmbench.splits.base import Splitter

log = logging.getLogger(__name__)


def _check_ratios(val_ratio: float, test_ratio: float) -> None:
    if not (0 <= val_ratio < 1 and 0 <= test_ratio < 1 and val_ratio + test_ratio < 1):
        raise ValueError(f"split ratios need 0 <= val, test and val + test < 1; got val={val_ratio}, test={test_ratio}")


def _rank_within(groups: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each event inside its group when ordered by ``keys``, equal keys by event index (the order of
    the dataset's events: file order), and the group sizes per event."""
    order = np.lexsort((np.arange(len(keys)), keys, groups))
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, len(g)])
    pos = np.empty(len(g), np.int64)
    pos[order] = np.arange(len(g)) - np.repeat(starts, sizes)
    size = np.empty(len(g), np.int64)
    size[order] = np.repeat(sizes, sizes)
    return pos, size


def _tail_labels(pos: np.ndarray, size: np.ndarray, n_val: np.ndarray, n_test: np.ndarray) -> np.ndarray:
    """Within each group: the last ``n_test`` positions are test, the ``n_val`` before them val, the rest train."""
    labels = np.zeros(len(pos), np.int8)
    labels[pos >= size - n_test - n_val] = 1
    labels[pos >= size - n_test] = 2
    return labels


class RandomSplit(Splitter):
    """Per user: a random ``val_ratio`` / ``test_ratio`` share of their events (rounded, at least one kept for
    training); the rest is training."""

    def __init__(
        self, val_ratio: float = 0.1, test_ratio: float = 0.1, seed: int = 0, allow_overlap: bool = False
    ) -> None:
        _check_ratios(val_ratio, test_ratio)
        self.val_ratio, self.test_ratio, self.seed = val_ratio, test_ratio, seed
        self._allow_overlap = allow_overlap

    def assign(self, ds: Dataset) -> np.ndarray:
        inter = ds.interactions
        keys = np.random.default_rng(self.seed).random(len(inter))
        pos, size = _rank_within(inter.users, keys)
        n_test = np.floor(size * self.test_ratio + 0.5).astype(np.int64)
        n_val = np.floor(size * self.val_ratio + 0.5).astype(np.int64)
        n_test = np.minimum(n_test, size - 1)
        n_val = np.minimum(n_val, size - 1 - n_test)
        return _tail_labels(pos, size, n_val, n_test)


class TemporalSplit(Splitter):
    """Global time cut: the oldest events train, the next ``val_ratio`` validate, the newest ``test_ratio`` test."""

    def __init__(self, val_ratio: float = 0.1, test_ratio: float = 0.1, allow_overlap: bool = False) -> None:
        _check_ratios(val_ratio, test_ratio)
        self.val_ratio, self.test_ratio = val_ratio, test_ratio
        self._allow_overlap = allow_overlap

    def assign(self, ds: Dataset) -> np.ndarray:
        ts = ds.interactions.timestamps
        n = len(ts)
        pos, _ = _rank_within(np.zeros(n, np.int64), ts)
        n_test = int(np.floor(n * self.test_ratio + 0.5))
        n_val = int(np.floor(n * self.val_ratio + 0.5))
        return _tail_labels(pos, np.full(n, n), np.full(n, n_val), np.full(n, n_test))


class LeaveLastOut(Splitter):
    """Per user by timestamp: the last ``n_test`` events test, the ``n_val`` before validate. Events with the
    same timestamp are ordered by event index (file order): of two events at the user's last second, the later
    line is the test event.

    Users with at most ``n_val + n_test`` events keep them all in training.
    """

    def __init__(self, n_val: int = 1, n_test: int = 1, allow_overlap: bool = False) -> None:
        self.n_val, self.n_test = n_val, n_test
        self._allow_overlap = allow_overlap

    def assign(self, ds: Dataset) -> np.ndarray:
        inter = ds.interactions
        pos, size = _rank_within(inter.users, inter.timestamps)
        enough = size > self.n_val + self.n_test
        return _tail_labels(pos, size, np.where(enough, self.n_val, 0), np.where(enough, self.n_test, 0))


def _hold_out(ids: np.ndarray, n: int, val_ratio: float, test_ratio: float, seed: int) -> np.ndarray:
    """Per event: its id's part when a seeded random ``test_ratio`` / ``val_ratio`` share of the ids that occur
    in ``ids`` (each of the ``n`` ids) is held out for test / val, with all their events."""
    seen = np.unique(ids)
    perm = np.random.default_rng(seed).permutation(seen)
    n_test = int(np.floor(len(seen) * test_ratio + 0.5))
    n_val = int(np.floor(len(seen) * val_ratio + 0.5))
    label = np.zeros(n, np.int8)
    label[perm[:n_test]] = 2
    label[perm[n_test : n_test + n_val]] = 1
    return label[ids]


class _ColdSplit(Splitter):
    """A random ``val_ratio`` / ``test_ratio`` share of the ``cold`` side's ids with events: all their events go
    to val / test, so those ids never appear in training."""

    cold = "items"

    def __init__(
        self, val_ratio: float = 0.1, test_ratio: float = 0.1, seed: int = 0, allow_overlap: bool = False
    ) -> None:
        _check_ratios(val_ratio, test_ratio)
        self.val_ratio, self.test_ratio, self.seed = val_ratio, test_ratio, seed
        self._allow_overlap = allow_overlap

    def assign(self, ds: Dataset) -> np.ndarray:
        inter = ds.interactions
        ids, n = (inter.users, inter.n_users) if self.cold == "users" else (inter.items, inter.n_items)
        return _hold_out(ids, n, self.val_ratio, self.test_ratio, self.seed)


class ColdItemSplit(_ColdSplit):
    """A random ``val_ratio`` / ``test_ratio`` share of the items with events: all their events go to val / test,
    so those items never appear in training."""


class ColdUserSplit(_ColdSplit):
    """A random ``val_ratio`` / ``test_ratio`` share of the users with events: all their events go to val / test,
    so those users never appear in training and are ranked over the whole catalogue (with ``eval.candidates=all``
    nothing of theirs is excluded). Only their user features, if any, describe them."""

    cold = "users"


class KFoldSplit(Splitter):
    """Fold ``fold`` of a ``n_folds``-fold cross-validation over events (Surprise's ``KFold``).

    All events are shuffled once with ``seed`` and cut into ``n_folds`` consecutive parts (the first
    ``n % n_folds`` parts one event longer); part ``fold`` (0-based) is test, the rest training. Every fold
    index with the same seed gives the same partition, so every model sees the same folds. ``val_ratio`` of
    each user's training events (seeded) may become validation; 0 (the default here, as in Surprise's
    protocol with default parameters) leaves validation empty.
    """

    def __init__(
        self, n_folds: int = 5, fold: int = 0, seed: int = 0, val_ratio: float = 0.0, allow_overlap: bool = False
    ) -> None:
        self._allow_overlap = allow_overlap
        if n_folds < 2:
            raise ValueError(f"split.n_folds must be >= 2, got {n_folds}")
        if not 0 <= fold < n_folds:
            raise ValueError(f"split.fold={fold}: choose 0 .. {n_folds - 1} (n_folds={n_folds})")
        _check_ratios(val_ratio, 0.0)
        self.n_folds, self.fold, self.seed, self.val_ratio = n_folds, fold, seed, val_ratio

    def assign(self, ds: Dataset) -> np.ndarray:
        n = len(ds.interactions)
        if n < self.n_folds:
            raise ValueError(f"split.n_folds={self.n_folds} exceeds the {n} events of dataset {ds.name!r}")
        perm = np.random.default_rng(self.seed).permutation(n)
        sizes = np.full(self.n_folds, n // self.n_folds)
        sizes[: n % self.n_folds] += 1
        start = int(sizes[: self.fold].sum())
        labels = np.zeros(n, np.int8)
        labels[perm[start : start + sizes[self.fold]]] = 2
        if self.val_ratio > 0:
            train = np.flatnonzero(labels == 0)
            inner = RandomSplit(self.val_ratio, 0.0, self.seed).assign(ds.restrict(train, compact=False))
            labels[train[inner == 1]] = 1
        return labels


def _match_pairs(ds: Dataset, raw_users: np.ndarray, raw_items: np.ndarray) -> np.ndarray:
    """Dataset event index of each raw (user, item) pair, -1 where the dataset has no such event."""
    inter = ds.interactions
    u = _lookup(ds.user_ids, raw_users)
    i = _lookup(ds.item_ids, raw_items)
    keys = inter.users * inter.n_items + inter.items
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    q = np.where((u >= 0) & (i >= 0), u * inter.n_items + i, -1)
    pos = np.clip(np.searchsorted(sk, q), 0, len(sk) - 1)
    return np.where((q >= 0) & (sk[pos] == q), order[pos], -1)


def _lookup(ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Index(ids).get_indexer(raw.astype(ids.dtype, copy=False))


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Predefined(Splitter):
    """Shared logic: label events from (raw user, raw item, part) rows, optionally carving val out of train."""

    val_ratio: float = 0.0
    seed: int = 0

    def _label(
        self, ds: Dataset, rows: list[tuple[str, np.ndarray, np.ndarray, int]], val_ratio: float | None = None
    ) -> np.ndarray:
        val_ratio = self.val_ratio if val_ratio is None else val_ratio
        labels = np.full(len(ds.interactions), -1, np.int8)
        for source, users, items, part in rows:
            idx = _match_pairs(ds, users, items)
            missing = int((idx < 0).sum())
            if missing == len(idx) and len(idx):
                raise ValueError(f"{source}: none of its {len(idx)} (user, item) pairs is in dataset {ds.name!r}")
            if missing:
                log.warning(
                    "%s: %d of %d rows are not in the (preprocessed) dataset; ignored", source, missing, len(idx)
                )
            labels[idx[idx >= 0]] = part
        if val_ratio > 0:
            train = np.flatnonzero(labels == 0)
            inner = RandomSplit(val_ratio, 0.0, self.seed).assign(ds.restrict(train, compact=False))
            labels[train[inner == 1]] = 1
        return labels


class PredefinedFiles(_Predefined):
    """Train/val/test read from given files of raw ``user item [rating timestamp]`` rows.

    Without a val file, ``val_ratio`` of each user's training events (seeded) becomes validation,
    because every choice must be made on validation data.
    """

    def __init__(
        self,
        train: str,
        test: str,
        val: str | None = None,
        val_ratio: float = 0.1,
        seed: int = 0,
        sep: str = "\t",
        base_dir: str | None = None,
        allow_overlap: bool = False,
    ) -> None:
        self.train, self.val, self.test = train, val, test
        self._allow_overlap = allow_overlap
        self.val_ratio = 0.0 if val else val_ratio
        self.seed, self.sep, self.base_dir = seed, sep, base_dir

    def _path(self, ds: Dataset, name: str) -> Path:
        base = Path(self.base_dir) if self.base_dir else ds.source
        p = Path(name).expanduser()
        if not p.is_absolute():
            if base is None:
                raise ValueError(
                    f"split file {name!r} is relative and neither split.base_dir nor the dataset's "
                    "source folder is known"
                )
            p = base / p
        if not p.is_file():
            raise FileNotFoundError(f"split file not found: {p}")
        return p

    def _files(self, ds: Dataset) -> list[tuple[Path, int]]:
        out = [(self._path(ds, self.train), 0), (self._path(ds, self.test), 2)]
        if self.val:
            out.append((self._path(ds, self.val), 1))
        return out

    def assign(self, ds: Dataset) -> np.ndarray:
        rows = []
        for path, part in self._files(ds):
            ncol = len(path.open().readline().rstrip("\n").split(self.sep))
            names = ["user", "item", "rating", "timestamp"][: max(2, min(ncol, 4))]
            df = read_delimited(path, names, self.sep, required=("user", "item"))
            rows.append((str(path), df["user"].to_numpy(), df["item"].to_numpy(), part))
        return self._label(ds, rows)

    def fingerprint(self, ds: Dataset) -> str:
        self._digests = {str(p): _file_digest(p) for p, _ in self._files(ds)}
        return super().fingerprint(ds)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "file_sha256": getattr(self, "_digests", {})}


class ML100KFold(PredefinedFiles):
    """An official ML-100K split: ``u1``..``u5`` (5-fold) or ``ua`` / ``ub`` (10 ratings per user in test)."""

    FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")

    def __init__(self, fold: str = "u1", val_ratio: float = 0.1, seed: int = 0, allow_overlap: bool = False) -> None:
        if fold not in self.FOLDS:
            raise ValueError(f"split.fold={fold!r}: choose one of {self.FOLDS}")
        super().__init__(f"{fold}.base", f"{fold}.test", None, val_ratio, seed, allow_overlap=allow_overlap)
        self.fold = fold


class PredefinedColumn(_Predefined):
    """A split column in an interaction file (MMRec's ``x_label``: 0 train, 1 val, 2 test).

    With ``path`` null, the split the dataset publishes itself (``Dataset.published_split``: ``dataset=mmrec``
    reads its ``x_label`` column); a dataset without one fails asking for ``split.path``.
    """

    def __init__(
        self,
        path: str | None = None,
        user_col: str = "userID",
        item_col: str = "itemID",
        label_col: str = "x_label",
        sep: str = "\t",
        allow_overlap: bool = False,
    ) -> None:
        self._allow_overlap = allow_overlap
        self.path, self.user_col, self.item_col, self.label_col, self.sep = path, user_col, item_col, label_col, sep

    def assign(self, ds: Dataset) -> np.ndarray:
        if self.path is None:
            return PublishedSplit().assign(ds)
        path = Path(self.path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"split file not found: {path}")
        header = path.open().readline().rstrip("\n").split(self.sep)
        for col in (self.user_col, self.item_col, self.label_col):
            if col not in header:
                raise ValueError(f"{path}: line 1: no column {col!r} in header {header}")
        df = read_delimited(
            path,
            header,
            self.sep,
            numeric=(self.label_col,),
            header=True,
            required=(self.user_col, self.item_col, self.label_col),
        )
        bad = ~df[self.label_col].isin([0, 1, 2])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"{path}: line {row + 2}: {self.label_col}={df[self.label_col].iloc[row]}, expected 0, 1 or 2"
            )
        rows = [
            (
                f"{path} ({self.label_col}={k})",
                df.loc[df[self.label_col] == k, self.user_col].to_numpy(),
                df.loc[df[self.label_col] == k, self.item_col].to_numpy(),
                k,
            )
            for k in (0, 1, 2)
        ]
        return self._label(ds, rows)

    def params(self) -> dict[str, Any]:
        if self.path is None:
            return {**super().params(), "published": getattr(self, "_published", None)}
        return {**super().params(), "file_sha256": _file_digest(Path(self.path).expanduser())}

    def fingerprint(self, ds: Dataset) -> str:
        self._published = _published_digest(ds) if self.path is None else None
        return super().fingerprint(ds)


def _published_digest(ds: Dataset) -> str:
    """SHA-256 of the dataset's published split rows (and of the files it was read from)."""
    parts = _published(ds)
    h = hashlib.sha256(pd.util.hash_pandas_object(parts, index=False).to_numpy().tobytes())
    h.update(json.dumps(ds.files, sort_keys=True).encode())
    return h.hexdigest()


def _published(ds: Dataset) -> pd.DataFrame:
    if ds.published_split is None:
        raise ValueError(
            f"dataset {ds.name!r} publishes no split: choose another split (e.g. split=random), or give the split "
            "files (split=predefined split.train=... / split=predefined_column split.path=...)"
        )
    return ds.published_split


class PublishedSplit(_Predefined):
    """The split the dataset itself publishes (``Dataset.published_split``: LATTICE's train/val/test.json,
    MMRec's ``x_label``), matched to the preprocessed events by raw (user, item).

    Without a validation part, a seeded ``val_ratio`` of each user's training events becomes validation. Events
    the published split does not name stay out of every part (logged); the fingerprint covers the published rows
    and the digests of the files they came from.
    """

    def __init__(self, val_ratio: float = 0.1, seed: int = 0) -> None:
        _check_ratios(val_ratio, 0.0)
        self.val_ratio, self.seed = val_ratio, seed

    def assign(self, ds: Dataset) -> np.ndarray:
        parts = _published(ds)
        has_val = bool((parts["part"] == 1).any())
        rows = [
            (f"{ds.name} published split ({name})", sel["user"].to_numpy(), sel["item"].to_numpy(), k)
            for k, name in enumerate(("train", "val", "test"))
            if len(sel := parts[parts["part"] == k])
        ]
        return self._label(ds, rows, 0.0 if has_val else self.val_ratio)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "published": getattr(self, "_published", None)}

    def fingerprint(self, ds: Dataset) -> str:
        self._published = _published_digest(ds)
        return super().fingerprint(ds)
