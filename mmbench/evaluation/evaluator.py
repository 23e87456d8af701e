"""Full-ranking evaluation in user batches on the model's device, with exclusion masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from mmbench.data.hashing import mix64
from mmbench.data.interactions import Interactions
from mmbench.evaluation.metrics import FULL_RANKING_METRICS, RANKING_METRICS, mae, rmse
from mmbench.models.base import Recommender


@dataclass
class EvalResult:
    """Mean metrics, per-user values and (optionally) each user's top-K list, over contiguous user ids."""

    means: dict[str, float]
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    topk_items: np.ndarray | None = None
    topk_scores: np.ndarray | None = None
    n_users: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Evaluator:
    """Ranks all items for every user with a relevant target item.

    Items in ``exclude`` (the training set; plus validation when testing) are
    masked before top-K. With ``positive_threshold`` only target events rated at
    least that much are relevant. Users are processed ``batch_size`` at a time, so
    no dense users x items matrix of the whole data set is ever built.
    ``metrics`` may name top-K metrics (computed at every K of ``ks``) and full-ranking
    ones (``auc``, ``map_full``: one value per user, over all non-excluded items).

    ``candidates="target"`` ranks only the items that occur in the evaluated part (e.g. the held-out
    items of a cold-item split, so a model ranks the new items for their users); ``"all"`` ranks the
    whole catalogue.
    """

    def __init__(
        self,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("recall", "ndcg", "precision", "hit", "map", "mrr"),
        batch_size: int = 512,
        positive_threshold: float | None = None,
        progress: bool = True,
        candidates: str = "all",
        tie_seed: int = 0,
        sparse_quantile: float | None = 0.25,
    ) -> None:
        if candidates not in ("all", "target"):
            raise ValueError(f"eval.candidates={candidates!r}: choose 'all' or 'target'")
        self.candidates = candidates
        unknown = [m for m in metrics if m not in RANKING_METRICS and m not in FULL_RANKING_METRICS]
        if unknown:
            known = sorted(RANKING_METRICS) + sorted(FULL_RANKING_METRICS)
            raise ValueError(f"eval.metrics: unknown {unknown}; choose from {known}")
        if not ks or min(ks) < 1:
            raise ValueError(f"eval.ks must be positive integers, got {list(ks)}")
        self.ks = sorted(int(k) for k in ks)
        self.metrics = list(metrics)
        self.batch_size = batch_size
        self.positive_threshold = positive_threshold
        self.progress = progress
        self.tie_seed = tie_seed
        if sparse_quantile is not None and not 0 < sparse_quantile < 1:
            raise ValueError(f"eval.sparse_quantile must be in (0, 1) or null, got {sparse_quantile}")
        self.sparse_quantile = sparse_quantile

    @property
    def metric_keys(self) -> list[str]:
        """The keys ``evaluate`` reports: ``recall@10``, …, ``auc``."""
        topk = [f"{m}@{k}" for m in self.metrics if m in RANKING_METRICS for k in self.ks]
        return topk + [m for m in self.metrics if m in FULL_RANKING_METRICS]

    @property
    def max_k(self) -> int:
        return self.ks[-1]

    def relevant(self, target: Interactions) -> sp.csr_matrix:
        """Users x items 0/1 matrix of the relevant target events."""
        if self.positive_threshold is not None:
            target = target.subset(target.ratings >= self.positive_threshold)
        m = target.to_csr()
        m.data[:] = 1.0
        return m

    def candidate_mask(self, target: Interactions) -> np.ndarray | None:
        """Items that may be ranked (``None``: all): with ``candidates="target"``, the target's items."""
        if self.candidates == "all":
            return None
        mask = np.zeros(target.n_items, bool)
        mask[target.items] = True
        return mask

    @staticmethod
    def exclusion(exclude: Sequence[Interactions], n_users: int, n_items: int) -> sp.csr_matrix:
        m = sp.csr_matrix((n_users, n_items), dtype=np.float32)
        for part in exclude:
            m = m + part.to_csr()
        return m.tocsr()

    def rank_batch(
        self,
        model: Recommender,
        users: np.ndarray,
        excl: sp.csr_matrix,
        rel: sp.csr_matrix,
        candidates: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Top-``max_k`` items and scores for ``users`` with excluded items (and non-candidates) masked, their
        0/1 hits, and the per-user values of the full-ranking metrics asked for (computed here, where all
        scores are)."""
        device = model.device
        u = torch.as_tensor(users, device=device)
        with torch.no_grad():
            scores = model.score(u).float()
        full_names = [m for m in self.metrics if m in FULL_RANKING_METRICS]
        candidate = None
        if full_names:
            candidate = torch.ones(scores.shape, dtype=torch.bool, device=device)
            _fill(candidate, excl[users], False)
        _fill(scores, excl[users], float("-inf"))
        if candidates is not None:
            outside = torch.as_tensor(~candidates, device=device)
            scores[:, outside] = float("-inf")
            if candidate is not None:
                candidate[:, outside] = False
        k = min(self.max_k, scores.shape[1] if candidates is None else int(candidates.sum()))
        order = self.tie_order(u, scores.shape[1])
        top_scores, top_pos = torch.topk(scores.gather(1, order), k, dim=1)
        top_items = order.gather(1, top_pos)
        dense_rel = torch.zeros(scores.shape, dtype=torch.float64, device=device)
        _fill(dense_rel, rel[users], 1.0)
        full = {}
        if full_names:
            relevant = dense_rel > 0
            full = {m: FULL_RANKING_METRICS[m].fn(scores, relevant, candidate) for m in full_names}
        return top_items, top_scores, dense_rel.gather(1, top_items), full

    def tie_order(self, users: torch.Tensor, n_items: int) -> torch.Tensor:
        """Per user, a random order of the items (a hash of ``tie_seed``, user and item) in which equal scores
        are ranked.

        ``torch.topk`` keeps equal scores in column order; item-id order would let the ids decide (ML-100K's ids
        follow popularity) and one shared order would favour the same items for everybody. The order of a user
        does not depend on the batch it is evaluated in.
        """
        items = torch.arange(n_items, device=users.device)
        keys = mix64((users.long()[:, None] * n_items + items[None, :]) * 1_000_003 + self.tie_seed * 7919 + 1)
        return torch.argsort(keys, dim=1)

    def per_user(
        self, hits: torch.Tensor, n_rel: torch.Tensor, full: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-user values of every metric: ``name@K`` for top-K metrics, ``name`` for full-ranking ones."""
        if hits.shape[1] < self.max_k:  # catalogue smaller than K: missing ranks are misses
            hits = torch.nn.functional.pad(hits, (0, self.max_k - hits.shape[1]))
        topk = [m for m in self.metrics if m in RANKING_METRICS]
        out = {f"{m}@{k}": RANKING_METRICS[m].fn(hits, n_rel, k) for m in topk for k in self.ks}
        return out | (full or {})

    def sparse_means(self, result: EvalResult, train: Interactions) -> dict[str, float]:
        """``sparse/<metric>``: means over the evaluated users whose number of training events is at most the
        ``sparse_quantile`` quantile of all users' counts (users without training events count 0): the
        less active users, where content is expected to help most. Empty without ``sparse_quantile``."""
        if self.sparse_quantile is None or not len(result.users):
            return {}
        counts = np.bincount(train.users, minlength=train.n_users)
        sparse = counts[result.users] <= np.quantile(counts, self.sparse_quantile)
        out = {
            f"sparse/{k}": float(v[sparse].mean()) if sparse.any() else float("nan") for k, v in result.per_user.items()
        }
        return out | {"sparse/n_users": float(sparse.sum())}

    def evaluate(
        self,
        model: Recommender,
        target: Interactions,
        exclude: Sequence[Interactions] = (),
        keep_topk: bool = False,
        desc: str = "evaluate",
    ) -> EvalResult:
        rel = self.relevant(target)
        n_rel_all = np.asarray(rel.sum(1)).ravel()
        users = np.flatnonzero(n_rel_all > 0)
        excl = self.exclusion(exclude, target.n_users, target.n_items)
        cand = self.candidate_mask(target)
        values: dict[str, list[np.ndarray]] = {}
        tops, top_scores = [], []
        batches = range(0, len(users), self.batch_size)
        for start in tqdm(batches, desc=desc, disable=not self.progress or len(batches) < 2, leave=False):
            b = users[start : start + self.batch_size]
            items, scores, hits, full = self.rank_batch(model, b, excl, rel, cand)
            n_rel = torch.as_tensor(n_rel_all[b], dtype=torch.float64, device=hits.device)
            for key, v in self.per_user(hits, n_rel, full).items():
                values.setdefault(key, []).append(v.cpu().numpy())
            if keep_topk:
                tops.append(items.cpu().numpy())
                top_scores.append(scores.cpu().numpy())
        per_user = {k: np.concatenate(v) if v else np.zeros(0) for k, v in values.items()}
        if not per_user:
            per_user = {key: np.zeros(0) for key in self.metric_keys}
        means = {k: float(v.mean()) if len(v) else float("nan") for k, v in per_user.items()}
        result = EvalResult(means, users, per_user, n_users=len(users))
        if keep_topk:
            result.topk_items = np.concatenate(tops) if tops else np.zeros((0, self.max_k), np.int64)
            result.topk_scores = np.concatenate(top_scores) if top_scores else np.zeros((0, self.max_k), np.float32)
        result.means.update(self.rating_means(model, target))
        return result

    def rating_means(self, model: Recommender, target: Interactions) -> dict[str, float]:
        """``rmse`` and ``mae`` of ``model.predict`` on the target's (user, item, rating) triples; empty for
        models that don't predict ratings and for implicit targets."""
        if not model.capabilities.predicts_ratings or target.is_implicit or not len(target):
            return {}
        pred = _predict_batched(model, target, self.batch_size * 256)
        truth = torch.as_tensor(target.ratings)
        return {"rmse": rmse(pred, truth), "mae": mae(pred, truth)}


def _fill(dense: torch.Tensor, rows: sp.csr_matrix, value: float) -> None:
    """Set ``dense[r, c] = value`` for every stored entry of the sparse batch ``rows``."""
    if rows.nnz == 0:
        return
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    dense[torch.as_tensor(r, device=dense.device), torch.as_tensor(rows.indices, device=dense.device)] = value


def _predict_batched(model: Recommender, target: Interactions, batch: int) -> torch.Tensor:
    out = []
    device = model.device
    with torch.no_grad():
        for s in range(0, len(target), batch):
            u = torch.as_tensor(target.users[s : s + batch], device=device)
            i = torch.as_tensor(target.items[s : s + batch], device=device)
            out.append(model.predict(u, i).float().cpu())
    return torch.cat(out)
