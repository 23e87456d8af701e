"""Ranking and rating metrics, vectorised over users, each declaring its direction.

Definitions (binary relevance; ``L`` = the top-K list, ``R`` = the user's relevant
target items, ``rel_r`` = 1 if the item at rank ``r`` is in ``R``):

- ``hit@K``       = 1 if ``|L ∩ R| > 0`` else 0
- ``precision@K`` = ``|L ∩ R| / K``
- ``recall@K``    = ``|L ∩ R| / |R|``  (divides by ``|R|``, not ``min(K, |R|)``)
- ``ndcg@K``      = ``Σ_{r≤K} rel_r / log2(r+1)`` divided by the ideal ``Σ_{r≤min(K,|R|)} 1 / log2(r+1)``
- ``map@K``       = ``Σ_{r≤K} rel_r · precision@r / min(K, |R|)``
- ``mrr@K``       = ``1 / (rank of the first relevant item)`` if it is within K, else 0

Full-ranking metrics (no K; ``N`` = the candidate items that are neither excluded nor relevant):

- ``auc``      = the fraction of (relevant, N) pairs whose relevant item scores higher; a tie counts 1/2
- ``map_full`` = ``Σ_{p ∈ R} precision@rank(p) / |R|`` over the whole ranking of the candidates
  (Cornac's ``MAP``; ties broken by item id, as a stable sort does)
- ``rmse``, ``mae`` over the (user, item, rating) triples of the target set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

RankFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]
FullFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Metric:
    """A named metric and whether larger is better (used for early stopping and selection)."""

    name: str
    higher_is_better: bool
    fn: RankFn | FullFn | None = None

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))


def hit(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return (hits[:, :k].sum(1) > 0).double()


def precision(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return hits[:, :k].sum(1) / k


def recall(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    return hits[:, :k].sum(1) / n_rel


def ndcg(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    disc = _discounts(k, hits.device)
    dcg = (hits[:, :k] * disc).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=k) - 1).long()]
    return dcg / ideal


def average_precision(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    h = hits[:, :k]
    prec_at_r = torch.cumsum(h, 1) / torch.arange(1, k + 1, device=h.device, dtype=torch.float64)
    return (prec_at_r * h).sum(1) / n_rel.clamp(max=k)


def reciprocal_rank(hits: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    h = hits[:, :k]
    first = torch.argmax(h, dim=1)  # first max index: the first hit where there is one
    return torch.where(h.sum(1) > 0, 1.0 / (first + 1).double(), torch.zeros_like(first, dtype=torch.float64))


def auc(scores: torch.Tensor, relevant: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Per row: ``P(s_pos > s_neg) + P(s_pos = s_neg) / 2`` over relevant x non-relevant candidates.

    ``scores`` ``[B, n]``; ``relevant`` and ``candidate`` boolean ``[B, n]``. One sort per row: items
    with equal scores form a group; a relevant item beats every negative of the groups below its own
    and ties with the negatives of its group (Mann-Whitney U, vectorised over the batch).
    """
    pos = relevant & candidate
    neg = candidate & ~relevant
    s = scores.masked_fill(~candidate, float("-inf"))  # non-candidates: one group below everything
    srt, order = torch.sort(s, dim=1)
    pos_s, neg_s = pos.gather(1, order).double(), neg.gather(1, order).double()
    new_group = torch.ones_like(srt, dtype=torch.bool)
    new_group[:, 1:] = srt[:, 1:] != srt[:, :-1]
    group = torch.cumsum(new_group, 1) - 1
    neg_in_group = torch.zeros_like(neg_s).scatter_add_(1, group, neg_s)
    neg_below_group = torch.cumsum(neg_in_group, 1) - neg_in_group
    wins = pos_s * (neg_below_group.gather(1, group) + 0.5 * neg_in_group.gather(1, group))
    return wins.sum(1) / (pos_s.sum(1) * neg_s.sum(1))


def average_precision_full(scores: torch.Tensor, relevant: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Per row: average precision of the relevant items over the whole ranking of the candidates."""
    s = scores.masked_fill(~candidate, float("-inf"))
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    rel = (relevant & candidate).gather(1, order).double()
    ranks = torch.arange(1, s.shape[1] + 1, device=s.device, dtype=torch.float64)
    return (torch.cumsum(rel, 1) / ranks * rel).sum(1) / rel.sum(1)


RANKING_METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("recall", True, recall),
        Metric("ndcg", True, ndcg),
        Metric("precision", True, precision),
        Metric("hit", True, hit),
        Metric("map", True, average_precision),
        Metric("mrr", True, reciprocal_rank),
    )
}
# metrics over the whole ranking: one value per user, no K (``auc``, not ``auc@10``)
FULL_RANKING_METRICS: dict[str, Metric] = {
    m.name: m for m in (Metric("auc", True, auc), Metric("map_full", True, average_precision_full))
}
RATING_METRICS: dict[str, Metric] = {m.name: m for m in (Metric("rmse", False), Metric("mae", False))}


def metric_for(key: str) -> Metric:
    """The metric behind a logged key such as ``ndcg@10``, ``val/recall@20`` or ``rmse``."""
    name = key.split("/")[-1].split("@")[0]
    found = RANKING_METRICS.get(name) or FULL_RANKING_METRICS.get(name) or RATING_METRICS.get(name)
    if found is None:
        known = sorted(RANKING_METRICS) + sorted(FULL_RANKING_METRICS) + sorted(RATING_METRICS)
        raise KeyError(f"unknown metric {key!r}: choose from {known}")
    return found


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.sqrt(torch.mean((pred.double() - target.double()) ** 2)))


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.mean(torch.abs(pred.double() - target.double())))


def metric_key(key: str) -> str:
    """The logged name of a metric key: MLflow forbids ``@``, so ``val/ndcg@10`` is logged as ``val/ndcg_at_10``."""
    return key.replace("@", "_at_")
