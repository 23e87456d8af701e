"""Item text built from the texts of *training* events only (Amazon / Yelp review text, MovieLens tags).

A loader cannot know the split, so it stores every event's text keyed by raw (user, item) in a
:class:`TrainingTexts` (the ``values`` of an :class:`ItemContent`). Nothing can read it before the split exists:
the pipeline calls :func:`fit_training_texts` with the training part right after splitting and before the
encoder stage, which replaces it with plain per-item strings — the concatenated texts of that item's training
events, in file order. Validation and test events never contribute, so no text of a held-out review leaks
into an item's features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmbench.data.interactions import Dataset, Interactions, ItemContent


class TrainingTexts(Sequence):
    """Per-event texts (raw ``users``, ``items``, ``texts``, aligned) for the items ``item_ids`` (raw, one per
    row of the content); unreadable until :meth:`for_training` turns them into per-item strings."""

    def __init__(self, users: np.ndarray, items: np.ndarray, texts: np.ndarray, item_ids: np.ndarray) -> None:
        self.users, self.items, self.texts, self.item_ids = users, items, texts, item_ids

    def __len__(self) -> int:
        return len(self.item_ids)

    def __getitem__(self, i):  # type: ignore[override]
        raise RuntimeError(
            "this item text is built from training events only: it exists after the split (fit_training_texts)"
        )

    def take(self, rows: np.ndarray) -> TrainingTexts:
        return TrainingTexts(self.users, self.items, self.texts, self.item_ids[rows])

    def for_training(self, train_users: np.ndarray, train_items: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Per item of ``item_ids``: its training events' texts joined by a blank line, and whether any."""
        events = pd.MultiIndex.from_arrays([self.users, self.items])
        keep = events.isin(pd.MultiIndex.from_arrays([train_users, train_items])) & (self.texts != "")
        df = pd.DataFrame({"item": self.items[keep], "text": self.texts[keep]})
        joined = df.groupby("item", sort=False)["text"].agg("\n\n".join)
        out = joined.reindex(self.item_ids)
        mask = out.notna().to_numpy()
        return out.fillna("").astype(str).tolist(), mask


def training_texts(
    modality: str, users: np.ndarray, items: np.ndarray, texts: np.ndarray, item_ids: np.ndarray
) -> ItemContent:
    """A deferred text modality: every event's text now, the training events' texts after the split."""
    texts = pd.Series(texts, dtype=object).fillna("").astype(str).str.strip().to_numpy(object)
    has = pd.Index(item_ids).isin(items[texts != ""])
    return ItemContent(modality, TrainingTexts(users, items, texts, np.asarray(item_ids)), np.asarray(has))


def fit_training_texts(ds: Dataset, train: Interactions) -> list[str]:
    """Replace every deferred :class:`TrainingTexts` modality of ``ds`` by the texts of ``train``'s events; the
    modalities replaced."""
    done = []
    for m, c in list(ds.content.items()):
        if isinstance(c.values, TrainingTexts):
            texts, mask = c.values.for_training(ds.user_ids[train.users], ds.item_ids[train.items])
            ds.content[m] = ItemContent(m, texts, mask)
            done.append(m)
    return done
