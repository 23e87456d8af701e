"""Full-ranking evaluation in user batches on the model's device, with exclusion masks."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from mmbench.data.hashing import mix64
from mmbench.data.interactions import Interactions
from mmbench.evaluation.metrics import FULL_RANKING_METRICS, RANKING_METRICS, mae, rmse
from mmbench.models.base import Recommender


@contextmanager
def scoring(model: Recommender) -> Iterator[None]:
    """Score ``model`` as at test time: a ``torch.nn.Module`` in ``eval()`` mode (no dropout, BatchNorm on its
    running statistics) under ``torch.no_grad()``; its previous mode is restored afterwards."""
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def pair_keys(users: torch.Tensor, items: torch.Tensor, n_items: int, seed: int) -> torch.Tensor:
    """The tie-break keys of the (user, item) pairs that ``users`` and ``items`` broadcast to: a seeded hash, so a
    user's key for an item does not depend on the batch, the device or which other cells are asked for."""
    return mix64((users.long() * n_items + items) * 1_000_003 + seed * 7919 + 1)


def tie_keys(users: torch.Tensor, n_items: int, seed: int) -> torch.Tensor:
    """``[len(users), n_items]`` int64 tie-break keys (:func:`pair_keys` of every item). Among equal scores the
    smaller key ranks first."""
    return pair_keys(users[:, None], torch.arange(n_items, device=users.device)[None, :], n_items, seed)


# the keys of cells: (batch rows, columns), broadcast together ([r, 1] and [r, c], or two [p]) -> int64 keys
KeyFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def select_topk(scores: torch.Tensor, keys: torch.Tensor | KeyFn, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the ``k`` best columns ordered by (score descending, key ascending), and their scores.

    ``keys``: the ``[rows, columns]`` tie-break keys, or a function giving the keys of the cells asked for
    (:class:`Evaluator` passes one: keys are then hashed only where they decide something). O(n) per row, no sort
    of the row: ``v`` = the k-th largest score; where no column outside ``torch.topk``'s k scores ``v`` (no tie
    across the cut; every row of a model with continuous scores) those k are the set; in the other rows every
    column scoring above ``v`` is in and the remaining places go to the columns scoring exactly ``v`` with the
    smallest keys. Only the ``k`` chosen are then sorted (stably: by key, then by score), so ``torch.topk``'s own
    order among equal values never matters.
    """
    key_of = (lambda rows, cols: keys[rows, cols]) if isinstance(keys, torch.Tensor) else keys
    n, m = scores.shape
    k = min(k, m)
    if k == 0:
        return torch.zeros((n, 0), dtype=torch.long, device=scores.device), scores[:, :0]
    # unsorted: the k chosen are ordered below by (score, key) anyway, so topk's own sort of them is wasted
    top_scores, chosen = torch.topk(scores, k, dim=1, sorted=False)
    v = top_scores.min(1, keepdim=True).values
    cut = ((scores >= v).sum(1) > k).nonzero().squeeze(1)
    if len(cut):  # a tie across the cut: the keys choose among the columns scoring exactly v (hashed only there)
        sub, sub_v = scores[cut], v[cut]
        priority = torch.full(sub.shape, torch.iinfo(torch.int64).max, dtype=torch.long, device=scores.device)
        priority[sub > sub_v] = -1
        r, c = (sub == sub_v).nonzero(as_tuple=True)
        priority[r, c] = key_of(cut[r], c)
        chosen = chosen.clone()
        chosen[cut] = torch.topk(priority, k, dim=1, largest=False).indices
    rows = torch.arange(n, device=scores.device)[:, None]
    by_key = torch.sort(key_of(rows, chosen), dim=1, stable=True).indices
    chosen = chosen.gather(1, by_key)
    by_score = torch.sort(scores.gather(1, chosen), dim=1, descending=True, stable=True).indices
    chosen = chosen.gather(1, by_score)
    return chosen, scores.gather(1, chosen)


@dataclass
class EvalResult:
    """Mean metrics, per-user values and (optionally) each user's top-K list, over contiguous user ids.

    A top-K slot without a rankable item (the user has fewer than K non-excluded candidates) holds item -1 and
    score NaN; it is a miss."""

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
    ones (``auc``, ``map_full``: one value per user, over all non-excluded items). With no ``metrics`` at all
    nothing is ranked: only the rating metrics (RMSE, MAE) of models that predict ratings (``conf/eval/rating.yaml``).

    ``candidates="target"`` ranks only the items that occur in the evaluated part (e.g. the held-out
    items of a cold-item split, so a model ranks the new items for their users); ``"all"`` ranks the
    whole catalogue. The pipeline refuses ``"target"`` on a split that is not cold-item / cold-user unless
    ``force_candidates`` (it reveals the test items).
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
        force_candidates: bool = False,
    ) -> None:
        if candidates not in ("all", "target"):
            raise ValueError(f"eval.candidates={candidates!r}: choose 'all' or 'target'")
        self.candidates = candidates
        self.force_candidates = force_candidates  # read by the pipeline: target candidates on a warm split
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
        scores are). Equal scores are ordered by :func:`tie_keys`; a masked item is never ranked: where fewer
        than K items are rankable the remaining slots hold item -1, score NaN and no hit."""
        scores, rankable, top_items, top_scores = self.rank(model, users, excl, candidates)
        empty = top_items < 0
        full_names = [m for m in self.metrics if m in FULL_RANKING_METRICS]
        relevant = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
        _fill(relevant, rel[users], True)
        hits = relevant.gather(1, top_items.clamp(min=0)).masked_fill(empty, False).double()
        full = {m: FULL_RANKING_METRICS[m].fn(scores, relevant, rankable) for m in full_names}
        return top_items, top_scores, hits, full

    def rank(
        self, model: Recommender, users: np.ndarray, excl: sp.csr_matrix, candidates: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The one top-K of a batch of ``users`` (contiguous ids), for :meth:`evaluate` and for a logged model
        (``mmbench.tracking.recommender_model``): the scores with ``excl``'s items and non-candidates at -inf,
        the rankable mask, and the top-``max_k`` items (-1 in empty slots) and scores (NaN there)."""
        device = model.device
        u = torch.as_tensor(users, device=device)
        with torch.no_grad():
            scores = model.score(u).float()
        # NaN has no place in a ranking (torch.topk would put it first): a diverged model fails loudly. The sum is NaN
        # whenever a score is (or +inf meets -inf), and costs a twentieth of the cell-by-cell test it gates.
        if torch.isnan(scores.sum()) and (nan := torch.isnan(scores)).any():
            row, col = (int(x) for x in nan.nonzero()[0])
            raise FloatingPointError(
                f"{type(model).__name__}.score gave {int(nan.sum())} NaN scores for {len(users)} users "
                f"(first: user {int(users[row])}, item {col}); the model diverged or its input has NaN"
            )
        rankable = torch.ones(scores.shape, dtype=torch.bool, device=device)
        _fill(rankable, excl[users], False)
        if candidates is not None:
            rankable[:, torch.as_tensor(~candidates, device=device)] = False
        scores = scores.masked_fill(~rankable, float("-inf"))
        top_items, top_scores = select_topk(scores, self.tie_order(u, scores.shape[1]), self.max_k)
        empty = ~rankable.gather(1, top_items)
        return scores, rankable, top_items.masked_fill(empty, -1), top_scores.masked_fill(empty, float("nan"))

    def tie_order(self, users: torch.Tensor, n_items: int) -> KeyFn:
        """Per user, the tie-break keys of the items (:func:`pair_keys` with ``tie_seed``), as the key function of
        :func:`select_topk` over a batch of ``users``: equal scores rank by ascending key, a random order per user.
        Item-id order would let the ids decide (ML-100K's ids follow popularity) and one shared order would favour
        the same items for everybody."""
        return lambda rows, cols: pair_keys(users[rows], cols, n_items, self.tie_seed)

    def per_user(
        self, hits: torch.Tensor, n_rel: torch.Tensor, full: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """Per-user values of every metric: ``name@K`` for top-K metrics, ``name`` for full-ranking ones."""
        if hits.shape[1] < self.max_k:  # catalogue smaller than K: missing ranks are misses
            hits = torch.nn.functional.pad(hits, (0, self.max_k - hits.shape[1]))
        topk = [m for m in self.metrics if m in RANKING_METRICS]
        out = {f"{m}@{k}": RANKING_METRICS[m].fn(hits, n_rel, k) for m in topk for k in self.ks}
        return out | (full or {})

    def sparse_flags(self, result: EvalResult, train: Interactions) -> np.ndarray | None:
        """Per evaluated user (``result.users``): whether it is in the sparse bucket, i.e. its number of training
        events (0 without any) is at most the ``sparse_quantile`` quantile of all users' counts (every user of
        the id space, evaluated or not). ``None`` without ``sparse_quantile``. This is the one definition: the
        per-user TSVs carry it as the ``sparse`` column and every reader uses that column."""
        if self.sparse_quantile is None:
            return None
        counts = np.bincount(train.users, minlength=train.n_users)
        return counts[result.users] <= np.quantile(counts, self.sparse_quantile)

    def sparse_means(self, result: EvalResult, train: Interactions) -> dict[str, float]:
        """``sparse/<metric>``: :func:`group_means` over the evaluated users of :meth:`sparse_flags` (the less
        active users, where content is expected to help most). Empty without ``sparse_quantile``."""
        sparse = self.sparse_flags(result, train)
        if sparse is None or not len(result.users):
            return {}
        return group_means(result, {"sparse": sparse})

    def evaluate(
        self,
        model: Recommender,
        target: Interactions,
        exclude: Sequence[Interactions] = (),
        keep_topk: bool = False,
        desc: str = "evaluate",
    ) -> EvalResult:
        """Metrics of ``model`` on ``target`` with ``exclude``'s pairs masked; the model is scored in eval mode
        (:func:`scoring`)."""
        rel = self.relevant(target)
        n_rel_all = np.asarray(rel.sum(1)).ravel()
        users = np.flatnonzero(n_rel_all > 0)
        excl = self.exclusion(exclude, target.n_users, target.n_items)
        cand = self.candidate_mask(target)
        values: dict[str, list[np.ndarray]] = {}
        tops, top_scores = [], []
        ranks = bool(self.metrics)  # no ranking metric asked for: rank nothing (rating metrics only)
        batches = range(0, len(users) if ranks else 0, self.batch_size)
        with scoring(model):
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
        if keep_topk and ranks:
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


def group_means(result: EvalResult, groups: dict[str, np.ndarray]) -> dict[str, float]:
    """``<group>/<metric>``: each per-user metric's mean over the evaluated users flagged in each group (a boolean
    per ``result.users``: the sparse users, a split's ``truncated`` users), and ``<group>/n_users``; NaN means
    where a group has no evaluated user."""
    out: dict[str, float] = {}
    for name, inside in groups.items():
        for k, v in result.per_user.items():
            out[f"{name}/{k}"] = float(v[inside].mean()) if inside.any() else float("nan")
        out[f"{name}/n_users"] = float(inside.sum())
    return out


def _fill(dense: torch.Tensor, rows: sp.csr_matrix, value: float | bool) -> None:
    """Set ``dense[r, c] = value`` for every stored entry of the sparse batch ``rows``."""
    if rows.nnz == 0:
        return
    r = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    dense[torch.as_tensor(r, device=dense.device), torch.as_tensor(rows.indices, device=dense.device)] = value


def _predict_batched(model: Recommender, target: Interactions, batch: int) -> torch.Tensor:
    out = []
    device = model.device
    with scoring(model):
        for s in range(0, len(target), batch):
            u = torch.as_tensor(target.users[s : s + batch], device=device)
            i = torch.as_tensor(target.items[s : s + batch], device=device)
            out.append(model.predict(u, i).float().cpu())
    return torch.cat(out)
