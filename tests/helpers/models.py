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


def community_recall(model, epochs: int, batch_size: int = 2048) -> float:
    """Recall@3 on the held-out items of ``two_communities()`` after training ``model`` for ``epochs`` epochs
    (random ranking gives 3/13 ~ 0.23): the learning check every neural model's tests share."""
    from mmbench.evaluation.evaluator import Evaluator
    from mmbench.training import NeuralTrainer
    from tests.helpers.data import two_communities

    train, held = two_communities()
    NeuralTrainer(max_epochs=epochs, batch_size=batch_size, enable_progress_bar=False).fit(
        model, train, None, Evaluator()
    )
    return Evaluator(ks=[3], metrics=["recall"], progress=False).evaluate(model, held, [train]).means["recall@3"]
