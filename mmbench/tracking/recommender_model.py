"""A fitted recommender with everything that ranks its test top-K: what a tracker records as the run's model.

Raw user ids in, their top-K items and scores out, ranked by :meth:`Evaluator.rank` with the run's exclusions
(training and validation items), candidates, tie order and batches, so the lists are exactly the run's
``recommendations/test_topk.tsv``. No MLflow here: :mod:`mmbench.tracking.mlflow_model` wraps it as a pyfunc."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmbench.evaluation.evaluator import Evaluator, scoring
from mmbench.models.base import Recommender

COLUMNS = ("user", "rank", "item", "score")


def topk_frame(
    user_ids: np.ndarray, item_ids: np.ndarray, users: np.ndarray, items: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """Top-K lists as rows ``user rank item score`` (raw ids, rank from 1), empty slots (item -1) left out: the
    layout of ``recommendations/<part>_topk.tsv``."""
    n, k = items.shape
    flat = items.ravel()
    ranked = flat >= 0
    return pd.DataFrame(
        {
            "user": np.repeat(user_ids[users], k)[ranked],
            "rank": np.tile(np.arange(1, k + 1), n)[ranked],
            "item": item_ids[flat[ranked]],
            "score": scores.ravel()[ranked],
        }
    )


@dataclass
class TopK:
    """The model, the evaluator that ranked its test lists, the raw ids and the items each user may not get."""

    model: Recommender
    evaluator: Evaluator
    user_ids: np.ndarray  # raw user id of each contiguous id
    item_ids: np.ndarray
    exclude: sp.csr_matrix  # users x items already seen (train + val for the test lists)
    candidates: np.ndarray | None  # items that may be ranked (None: all)

    def user_index(self, users: np.ndarray | pd.Series) -> np.ndarray:
        """Contiguous ids of raw ``users``; an unknown one fails naming it."""
        raw = np.asarray(users).astype(self.user_ids.dtype)
        index = pd.Index(self.user_ids).get_indexer(raw)
        if (index < 0).any():
            unknown = raw[index < 0]
            raise ValueError(f"{len(unknown)} user id(s) not in the model's training data, e.g. {unknown[:5].tolist()}")
        return index

    def recommend(self, users: np.ndarray | pd.Series, k: int | None = None) -> pd.DataFrame:
        """Rows ``user rank item score`` for raw ``users`` in the given order, at most ``k`` (default the
        evaluator's largest K) per user. Batches of ``evaluator.batch_size`` as in evaluation, so the test
        users in the test file's order get exactly its rows."""
        index = self.user_index(users)
        ev = self.evaluator
        tops, top_scores = [], []
        with scoring(self.model):
            for s in range(0, len(index), ev.batch_size):
                _, _, items, scores = ev.rank(self.model, index[s : s + ev.batch_size], self.exclude, self.candidates)
                tops.append(items.cpu().numpy())
                top_scores.append(scores.cpu().numpy())
        kk = ev.max_k if k is None else min(int(k), ev.max_k)
        items = np.concatenate(tops)[:, :kk] if tops else np.zeros((0, kk), np.int64)
        scores = np.concatenate(top_scores)[:, :kk] if tops else np.zeros((0, kk), np.float32)
        return topk_frame(self.user_ids, self.item_ids, index, items, scores)
