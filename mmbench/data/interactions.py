"""Core data containers: interactions with contiguous ids, and a dataset binding them to raw ids."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp


@dataclass(frozen=True)
class Interactions:
    """User-item events over a fixed id space (contiguous ``0..n-1`` ids).

    ``ratings`` is all ones for implicit feedback; ``timestamps`` is zeros when unknown.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "ratings", "timestamps"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Interactions.{name} has {len(getattr(self, name))} rows, users has {n}")
        if n and (self.users.max() >= self.n_users or self.items.max() >= self.n_items):
            raise ValueError("Interactions hold an id outside the declared id space")

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, mask_or_index: np.ndarray) -> Interactions:
        """Rows selected by a boolean mask or an index array, same id space."""
        return Interactions(
            self.users[mask_or_index],
            self.items[mask_or_index],
            self.ratings[mask_or_index],
            self.timestamps[mask_or_index],
            self.n_users,
            self.n_items,
        )

    def to_csr(self, values: str = "ones") -> sp.csr_matrix:
        """Users x items sparse matrix of ones (``values="ones"``) or ratings."""
        data = np.ones(len(self), np.float32) if values == "ones" else self.ratings.astype(np.float32)
        m = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        return m

    @property
    def is_implicit(self) -> bool:
        """True when every rating is 1 (no graded feedback to predict)."""
        return bool(len(self) == 0 or np.all(self.ratings == 1.0))

    def fingerprint(self) -> str:
        """SHA-256 over the arrays: equal data gives the equal fingerprint."""
        h = hashlib.sha256()
        for a in (self.users, self.items, self.ratings, self.timestamps):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(f"{self.n_users},{self.n_items}".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class ItemContent:
    """Raw content of one modality for every item (index = contiguous item id).

    ``mask[i]`` is False where item ``i`` has no content of this modality; its
    ``values`` entry is then a placeholder that encoders must not read.
    """

    modality: str
    values: Sequence[Any]
    mask: np.ndarray

    entity = "item"  # what a row is, for messages ("3 rows for 5 items")

    def __post_init__(self) -> None:
        if len(self.values) != len(self.mask):
            raise ValueError(
                f"{type(self).__name__}[{self.modality}]: {len(self.values)} values but {len(self.mask)} mask entries"
            )

    def take(self, rows: np.ndarray) -> ItemContent:
        """Content of the given rows, in that order."""
        if isinstance(self.values, np.ndarray):
            return type(self)(self.modality, self.values[rows], self.mask[rows])
        if isinstance(self.values, pd.DataFrame):
            return type(self)(self.modality, self.values.iloc[rows].reset_index(drop=True), self.mask[rows])
        if hasattr(self.values, "take"):  # lazy containers (e.g. poster files) select without loading
            return type(self)(self.modality, self.values.take(rows), self.mask[rows])
        return type(self)(self.modality, [self.values[i] for i in rows], self.mask[rows])


@dataclass(frozen=True)
class UserContent(ItemContent):
    """Raw content of one modality for every user (index = contiguous user id), as :class:`ItemContent` is
    for items: e.g. the user table's demographics (``values`` a DataFrame) or a numeric matrix."""

    entity = "user"


@dataclass
class Dataset:
    """Interactions plus maps back to raw ids, side tables and per-modality item (``content``) and user
    (``user_content``) content, all indexed by contiguous id."""

    name: str
    interactions: Interactions
    user_ids: np.ndarray  # raw id of contiguous user u is user_ids[u]
    item_ids: np.ndarray
    user_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    item_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    content: dict[str, ItemContent] = field(default_factory=dict)
    source: Path | None = None  # folder the data was read from, for splitters that read files beside it
    user_content: dict[str, UserContent] = field(default_factory=dict)
    # SHA-256 of every data file read (file name -> hex digest): logged as tags ``data_sha256.<name>`` so tables
    # never mix copies of a dataset; the split fingerprint already covers the data by content.
    files: dict[str, str] = field(default_factory=dict)
    # The split the source publishes (LATTICE's train/val/test.json, MMRec's x_label), as raw-id rows
    # ``user item part`` (part 0 train, 1 val, 2 test); read by ``split=published`` / ``predefined_column``.
    published_split: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def fingerprint(self) -> str:
        """Hash of the interactions and the raw-id maps (what a split depends on)."""
        h = hashlib.sha256(self.interactions.fingerprint().encode())
        for ids in (self.user_ids, self.item_ids):
            h.update(pd.util.hash_array(np.asarray(ids, dtype=object)).tobytes())
        return h.hexdigest()

    def restrict(self, rows: np.ndarray, compact: bool = True) -> Dataset:
        """Keep only the given interaction rows.

        With ``compact`` the users and items left without events leave the id space
        (ids are re-mapped); without it the catalogue is unchanged.
        """
        inter = self.interactions.subset(rows)
        if not compact:
            return Dataset(
                self.name,
                inter,
                self.user_ids,
                self.item_ids,
                self.user_table,
                self.item_table,
                self.content,
                self.source,
                self.user_content,
                self.files,
                self.published_split,
            )
        keep_u, new_u = np.unique(inter.users, return_inverse=True)
        keep_i, new_i = np.unique(inter.items, return_inverse=True)
        return Dataset(
            self.name,
            Interactions(
                new_u.astype(np.int64),
                new_i.astype(np.int64),
                inter.ratings,
                inter.timestamps,
                len(keep_u),
                len(keep_i),
            ),
            self.user_ids[keep_u],
            self.item_ids[keep_i],
            self.user_table.iloc[keep_u].reset_index(drop=True),
            self.item_table.iloc[keep_i].reset_index(drop=True),
            {m: c.take(keep_i) for m, c in self.content.items()},
            self.source,
            {m: c.take(keep_u) for m, c in self.user_content.items()},
            self.files,
            self.published_split,
        )

    def to_frame(self, inter: Interactions) -> pd.DataFrame:
        """Raw-id table ``user item rating timestamp`` (the split file format)."""
        return pd.DataFrame(
            {
                "user": self.user_ids[inter.users],
                "item": self.item_ids[inter.items],
                "rating": inter.ratings,
                "timestamp": inter.timestamps,
            }
        )

    def from_frame(self, df: pd.DataFrame, source: str) -> Interactions:
        """Inverse of :meth:`to_frame`; an unknown raw id fails naming ``source`` and the row."""
        uidx = pd.Index(self.user_ids).get_indexer(df["user"].to_numpy())
        iidx = pd.Index(self.item_ids).get_indexer(df["item"].to_numpy())
        for name, idx in (("user", uidx), ("item", iidx)):
            bad = np.flatnonzero(idx < 0)
            if len(bad):
                row = int(bad[0])
                raise ValueError(
                    f"{source}: line {row + 2}: {name} id {df[name].iloc[row]} is not in dataset {self.name!r}"
                    f" ({len(bad)} such rows)"
                )
        return Interactions(
            uidx.astype(np.int64),
            iidx.astype(np.int64),
            df["rating"].to_numpy(np.float32),
            df["timestamp"].to_numpy(np.int64),
            self.n_users,
            self.n_items,
        )


def build_dataset(
    name: str,
    raw_users: np.ndarray,
    raw_items: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    user_table: pd.DataFrame | None = None,
    item_table: pd.DataFrame | None = None,
) -> Dataset:
    """Map raw ids to contiguous ids (sorted raw order) and bind side tables (indexed by raw id).

    Users and items that appear only in a side table are kept: an item with no
    interactions is still part of the catalogue.
    """
    raw_users, raw_items = np.asarray(raw_users), np.asarray(raw_items)
    uids = pd.Index(pd.unique(np.concatenate([raw_users, _index(user_table, raw_users)]))).sort_values()
    iids = pd.Index(pd.unique(np.concatenate([raw_items, _index(item_table, raw_items)]))).sort_values()
    inter = Interactions(
        uids.get_indexer(raw_users).astype(np.int64),
        iids.get_indexer(raw_items).astype(np.int64),
        np.asarray(ratings, np.float32),
        np.asarray(timestamps, np.int64),
        len(uids),
        len(iids),
    )
    return Dataset(
        name,
        inter,
        uids.to_numpy(),
        iids.to_numpy(),
        _align(user_table, uids),
        _align(item_table, iids),
    )


def _index(table: pd.DataFrame | None, like: np.ndarray) -> np.ndarray:
    return like[:0] if table is None else table.index.to_numpy().astype(like.dtype)


def _align(table: pd.DataFrame | None, ids: pd.Index) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame(index=pd.RangeIndex(len(ids)))
    out = table.reindex(ids)
    out.index = pd.RangeIndex(len(ids))
    out.insert(0, "raw_id", ids.to_numpy())
    return out
