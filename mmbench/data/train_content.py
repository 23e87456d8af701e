"""Item content that depends on the split: built from the training part only, after splitting.

Some modalities are made of user events themselves — MovieLens tags, Amazon / Yelp review texts — so building
them from all events would leak validation / test interactions into the item features. Such content is held by the
dataset as a :class:`TrainDependent` object (the raw material, not yet usable); the pipeline calls
:func:`content_for_training` with the split's training part just before the encoder stage, which replaces each
of them by the ordinary :class:`ItemContent` built from training events only. Reading such a modality before
that (e.g. hashing it for the feature cache) fails with a message saying so.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from mmbench.data.interactions import Dataset, Interactions, ItemContent


class TrainDependent(Sequence):
    """Raw material of a modality that must be built from the training part (one entry per item)."""

    @abstractmethod
    def for_training(self, ds: Dataset, train: Interactions) -> ItemContent:
        """The modality's content, built from ``train`` events only (same item order as the dataset)."""

    @abstractmethod
    def take(self, items: np.ndarray) -> TrainDependent:
        """The material of ``items`` (contiguous ids), in that order (used by ``Dataset.restrict``)."""

    def __getitem__(self, i: Any) -> Any:
        raise TypeError(f"{type(self).__name__} depends on the split: call content_for_training(ds, train) first")

    def fingerprint(self) -> str:
        raise TypeError(f"{type(self).__name__} depends on the split: call content_for_training(ds, train) first")


def content_for_training(ds: Dataset, train: Interactions) -> Dataset:
    """``ds`` with every :class:`TrainDependent` modality built from ``train`` (a shallow copy; ``ds`` itself is
    unchanged); ``ds`` itself when it has none."""
    pending = {m: c for m, c in ds.content.items() if isinstance(c.values, TrainDependent)}
    if not pending:
        return ds
    content = dict(ds.content)
    for m, c in pending.items():
        built = c.values.for_training(ds, train)
        content[m] = ItemContent(m, built.values, built.mask)
    return dataclasses.replace(ds, content=content)


class TrainTags(TrainDependent):
    """Tag events (raw user id, item position, tag text) turned into one text per item from the tags whose
    (user, item) pair is a training event: the item's distinct tags (case-folded, stripped), most used first
    (ties alphabetical), at most ``max_tags``, joined by ``", "``. An item with no such tag is masked."""

    def __init__(self, users: np.ndarray, items: np.ndarray, tags: np.ndarray, n_items: int, max_tags: int) -> None:
        self.users, self.items, self.tags = users, items, tags
        self.n_items, self.max_tags = n_items, max_tags

    @classmethod
    def from_raw(
        cls, ds: Dataset, raw_users: np.ndarray, raw_items: np.ndarray, tags: pd.Series, max_tags: int
    ) -> TrainTags:
        """From raw-id tag events; tags on items outside the dataset's catalogue are dropped."""
        pos = pd.Index(ds.item_ids).get_indexer(np.asarray(raw_items).astype(ds.item_ids.dtype, copy=False))
        text = tags.astype(str).str.strip().str.casefold().to_numpy(dtype=object)
        keep = (pos >= 0) & (text != "")
        return cls(np.asarray(raw_users)[keep], pos[keep], text[keep], ds.n_items, max_tags)

    def __len__(self) -> int:
        return self.n_items

    def take(self, items: np.ndarray) -> TrainTags:
        new = np.full(self.n_items, -1, np.int64)
        new[np.asarray(items)[::-1]] = np.arange(len(items))[::-1]  # first occurrence wins
        pos = new[self.items]
        keep = pos >= 0
        return TrainTags(self.users[keep], pos[keep], self.tags[keep], len(items), self.max_tags)

    def for_training(self, ds: Dataset, train: Interactions) -> ItemContent:
        users = pd.Index(ds.user_ids).get_indexer(self.users.astype(ds.user_ids.dtype, copy=False))
        pair = np.where(users >= 0, users * train.n_items + self.items, -1)
        in_train = np.isin(pair, train.users.astype(np.int64) * train.n_items + train.items)
        df = pd.DataFrame({"item": self.items[in_train], "tag": self.tags[in_train]})
        counts = df.groupby(["item", "tag"]).size().rename("n").reset_index()
        counts = counts.sort_values(["item", "n", "tag"], ascending=[True, False, True], kind="stable")
        counts = counts[counts.groupby("item").cumcount() < self.max_tags]
        joined = counts.groupby("item")["tag"].agg(", ".join)
        texts = np.full(self.n_items, "", dtype=object)
        texts[joined.index.to_numpy()] = joined.to_numpy()
        mask = np.zeros(self.n_items, bool)
        mask[joined.index.to_numpy()] = True
        return ItemContent("tags", list(texts), mask)


class TrainingTexts(TrainDependent):
    """Per-event texts (raw ``users``, ``items``, ``texts``, aligned; e.g. reviews) for the items ``item_ids`` (raw,
    one per row of the content), turned into per item the texts of its training events joined by a blank line, in
    file order; an item without any is masked."""

    def __init__(self, users: np.ndarray, items: np.ndarray, texts: np.ndarray, item_ids: np.ndarray) -> None:
        self.users, self.items, self.texts, self.item_ids = users, items, texts, item_ids

    def __len__(self) -> int:
        return len(self.item_ids)

    def take(self, items: np.ndarray) -> TrainingTexts:
        return TrainingTexts(self.users, self.items, self.texts, self.item_ids[items])

    def for_training(self, ds: Dataset, train: Interactions) -> ItemContent:
        events = pd.MultiIndex.from_arrays([self.users, self.items])
        in_train = pd.MultiIndex.from_arrays([ds.user_ids[train.users], ds.item_ids[train.items]])
        keep = events.isin(in_train) & (self.texts != "")
        df = pd.DataFrame({"item": self.items[keep], "text": self.texts[keep]})
        out = df.groupby("item", sort=False)["text"].agg("\n\n".join).reindex(self.item_ids)
        return ItemContent("reviews", out.fillna("").astype(str).tolist(), out.notna().to_numpy())


def training_texts(
    modality: str, users: np.ndarray, items: np.ndarray, texts: np.ndarray, item_ids: np.ndarray
) -> ItemContent:
    """A deferred text modality: every event's text now, the training events' texts after the split."""
    texts = pd.Series(texts, dtype=object).fillna("").astype(str).str.strip().to_numpy(object)
    has = pd.Index(item_ids).isin(items[texts != ""])
    return ItemContent(modality, TrainingTexts(users, items, texts, np.asarray(item_ids)), np.asarray(has))
