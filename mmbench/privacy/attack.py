"""Membership inference against a trained recommender: does its score tell training events from held-out ones?

The attacker knows the model's scores and a (user, item) pair and guesses "member" above a threshold; over all
thresholds that is the ROC AUC of the score between members (training events) and non-members (held-out events
of the same users) — the score / loss-threshold attack of Yeom et al. (CSF 2018): a lower loss is a higher score.
0.5 means the scores carry nothing about membership; a model that memorises its training events scores them
higher than held-out ones. Two attack scores: the raw score (``privacy/mia_auc``, one global threshold) and the
item's rank among all items for that user as a fraction (``privacy/mia_auc_rank``: removes each user's score
scale). Held-out and training events must be exchangeable for 0.5 to be the no-leak value (a per-user random
split is; a temporal one is not: drift alone moves the AUC).
"""

from __future__ import annotations

import numpy as np
import torch

from mmbench.data.interactions import Interactions
from mmbench.evaluation.evaluator import scoring
from mmbench.models.base import Recommender


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC of ``positive`` against ``negative`` scores (ties count one half): Mann-Whitney U / (n1 n0)."""
    if not len(positive) or not len(negative):
        raise ValueError(f"auc needs both classes: {len(positive)} positive, {len(negative)} negative scores")
    from scipy.stats import rankdata  # here: scipy.stats costs ~1 s of every run's start-up

    ranks = rankdata(np.concatenate([positive, negative]))
    n1, n0 = len(positive), len(negative)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pair_scores(model: Recommender, pairs: Interactions, batch_users: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per pair of ``pairs`` (in its order): the model's score and the fraction of all items the user scores
    strictly lower (its rank from the bottom)."""
    order = np.argsort(pairs.users, kind="stable")
    users, items = pairs.users[order].astype(np.int64), pairs.items[order].astype(np.int64)
    uniq = np.unique(users)
    score, frac = np.empty(len(users), np.float64), np.empty(len(users), np.float64)
    with scoring(model):
        for s in range(0, len(uniq), batch_users):
            block = uniq[s : s + batch_users]
            lo, hi = np.searchsorted(users, [block[0], block[-1] + 1])
            rows = torch.as_tensor(np.searchsorted(block, users[lo:hi]))
            full = model.score(torch.as_tensor(block, device=model.device)).float().cpu()
            got = full[rows, torch.as_tensor(items[lo:hi])]
            below = torch.searchsorted(torch.sort(full, dim=1).values[rows], got[:, None]).squeeze(1)
            score[lo:hi], frac[lo:hi] = got.numpy(), below.numpy() / full.shape[1]
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return score[back], frac[back]


class MembershipInference:
    """``privacy=audit`` (and part of ``privacy=dp``): the threshold attack between the training events of the
    users who have held-out events (members) and those held-out events (non-members)."""

    def __init__(self, batch_users: int = 256) -> None:
        if batch_users < 1:
            raise ValueError(f"privacy.batch_users={batch_users}: must be at least 1")
        self.batch_users = batch_users

    def __call__(self, model: Recommender, train: Interactions, held_out: Interactions) -> dict[str, float]:
        """Attack AUCs (module docstring) and the numbers of member and non-member pairs."""
        members = train.subset(np.isin(train.users, held_out.users))
        s1, r1 = pair_scores(model, members, self.batch_users)
        s0, r0 = pair_scores(model, held_out, self.batch_users)
        return {
            "privacy/mia_auc": auc(s1, s0),
            "privacy/mia_auc_rank": auc(r1, r0),
            "privacy/mia_members": float(len(s1)),
            "privacy/mia_nonmembers": float(len(s0)),
        }
