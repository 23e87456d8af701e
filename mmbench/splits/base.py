"""Splitter interface and the on-disk split store keyed by a fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.data.interactions import Dataset, Interactions

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Train/val/test over one id space, with the fingerprint that names it and the folder that holds it."""

    train: Interactions
    val: Interactions
    test: Interactions
    fingerprint: str
    directory: Path
    # named user groups reported on their own (contiguous user ids), e.g. ``truncated`` of split=sparse_history:
    # the pipeline logs ``val|test/<group>/<metric>`` over the evaluated users of each group (evaluation.group_means)
    groups: dict[str, np.ndarray] = field(default_factory=dict)

    def files(self) -> dict[str, Path]:
        return {p: self.directory / f"{p}.tsv" for p in PARTS}


class Splitter(ABC):
    """Assigns every event of a dataset to train (0), val (1), test (2), or none (-1).

    ``cold`` declares a split whose val / test parts hold ``"items"`` or ``"users"`` never seen in training
    (``None``: warm); ranking only the target's items (``eval.candidates=target``) is meant for those.
    A (user, item) pair in two parts is refused unless the splitter was built with ``allow_overlap=True``.
    """

    cold: str | None = None
    _allow_overlap: bool = False

    @abstractmethod
    def assign(self, ds: Dataset) -> np.ndarray:
        """Per-event part label in {-1, 0, 1, 2}."""

    def groups(self, ds: Dataset) -> dict[str, np.ndarray]:
        """Named user groups (contiguous ids) reported on their own; called after :meth:`assign`. None by default."""
        return {}

    def params(self) -> dict[str, Any]:
        """Everything that changes the assignment (goes into the fingerprint)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def fingerprint(self, ds: Dataset) -> str:
        spec = {
            "dataset": ds.name,
            "data": ds.fingerprint(),
            "splitter": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": self.params(),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def check_overlap(ds: Dataset, parts: dict[str, Interactions], allow: bool, source: str) -> dict[str, int]:
    """Pairs (user, item) present in two parts (train/val, train/test, val/test), counted per pair of parts.

    Such a pair makes an item both masked (it is a training item) and relevant, or leaks a target into
    training; it fails with the count and an example (raw ids) unless ``allow`` (``split.allow_overlap=true``),
    which logs a warning instead.
    """
    keys = {p: np.unique(parts[p].users * parts[p].n_items + parts[p].items) for p in PARTS}
    found = {}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = np.intersect1d(keys[a], keys[b], assume_unique=True)
        if not len(both):
            continue
        found[f"{a}/{b}"] = len(both)
        n_items = parts[a].n_items
        u, i = str(ds.user_ids[both[0] // n_items]), str(ds.item_ids[both[0] % n_items])
        msg = (
            f"{source}: {len(both)} (user, item) pairs are in both {a} and {b}, e.g. user {u} item {i} "
            "(repeated events kept by preprocess.dedup=keep, or overlapping split files)"
        )
        if not allow:
            raise ValueError(msg + "; de-duplicate (preprocess.dedup=last) or set split.allow_overlap=true")
        log.warning("%s; accepted: split.allow_overlap=true", msg)
    return found


def load_or_create(ds: Dataset, splitter: Splitter, split_dir: str | Path) -> Split:
    """The split of ``ds`` by ``splitter``: read from ``split_dir`` if saved before, else computed and saved."""
    fp = splitter.fingerprint(ds)
    folder = Path(split_dir).expanduser() / ds.name / fp[:16]
    meta_path = folder / "split.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != fp:
            raise RuntimeError(f"{meta_path}: fingerprint {meta.get('fingerprint')} != {fp} (prefix collision)")
        parts = {p: ds.from_frame(pd.read_csv(folder / f"{p}.tsv", sep="\t"), str(folder / f"{p}.tsv")) for p in PARTS}
        for p in PARTS:
            if len(parts[p]) != meta["counts"][p]:
                raise RuntimeError(
                    f"{folder / (p + '.tsv')}: {len(parts[p])} rows, split.json says {meta['counts'][p]}"
                )
        log.info("reusing split %s from %s", fp[:16], folder)
        check_overlap(ds, parts, splitter._allow_overlap, str(folder))
        groups = {g: _user_index(ds, raw, meta_path) for g, raw in meta.get("groups", {}).items()}
        return Split(parts["train"], parts["val"], parts["test"], fp, folder, groups)

    labels = splitter.assign(ds)
    if labels.shape != (len(ds.interactions),):
        raise RuntimeError(
            f"{type(splitter).__name__} returned {labels.shape} labels for {len(ds.interactions)} events"
        )
    parts = {p: ds.interactions.subset(labels == k) for k, p in enumerate(PARTS)}
    n_none = int((labels < 0).sum())
    if n_none:
        log.warning("%s left %d of %d events out of every part", type(splitter).__name__, n_none, len(labels))
    if len(parts["train"]) == 0:
        raise ValueError(f"{type(splitter).__name__} produced an empty training set")
    check_overlap(ds, parts, splitter._allow_overlap, type(splitter).__name__)
    groups = splitter.groups(ds)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        for p in PARTS:
            ds.to_frame(parts[p]).to_csv(tmp / f"{p}.tsv", sep="\t", index=False)
        meta = {
            "fingerprint": fp,
            "dataset": ds.name,
            "splitter": f"{type(splitter).__module__}.{type(splitter).__qualname__}",
            "params": splitter.params(),
            "counts": {p: len(parts[p]) for p in PARTS},
            "unassigned": n_none,
        }
        if groups:  # raw user ids, so the file reads back on any id mapping of the same data
            meta["groups"] = {g: ds.user_ids[np.asarray(u, np.int64)].tolist() for g, u in groups.items()}
        (tmp / "split.json").write_text(json.dumps(meta, indent=2, default=str))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process saved the same split first
            shutil.rmtree(tmp)
            return load_or_create(ds, splitter, split_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved split %s to %s (train %d, val %d, test %d)", fp[:16], folder, *(len(parts[p]) for p in PARTS))
    return Split(parts["train"], parts["val"], parts["test"], fp, folder, groups)


def _user_index(ds: Dataset, raw: list, source: Path) -> np.ndarray:
    idx = pd.Index(ds.user_ids).get_indexer(np.asarray(raw, dtype=ds.user_ids.dtype))
    if (idx < 0).any():
        raise RuntimeError(f"{source}: a group lists user {raw[int(np.flatnonzero(idx < 0)[0])]} not in {ds.name!r}")
    return np.sort(idx).astype(np.int64)
