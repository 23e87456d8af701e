"""Stand-in models for evaluator and splitter tests."""

from __future__ import annotations

import torch

from mmbench.models.base import Recommender


class Fixed(Recommender):
    """Scores from a fixed matrix; records the batch sizes it was asked for."""

    def __init__(self, scores):
        self.scores = torch.tensor(scores, dtype=torch.float32)
        self.batches = []

    def fit(self, train, val=None):
        return self

    def score(self, users, items=None):
        self.batches.append(len(users))
        return self.scores[users].clone()


SCORES = [[5, 4, 3, 2, 1], [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]
