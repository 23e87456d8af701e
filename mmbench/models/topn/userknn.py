"""User-based k-nearest-neighbours for top-N: cosine similarity with shrinkage, sparse and blockwise."""

from __future__ import annotations

from typing import Self

import numpy as np
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.topn.itemknn import CosineKNN, cosine_topk


class UserKNN(CosineKNN):
    """``score(u, i) = Σ_{v ∈ N_k(u)} sim(u, v) · x_vi`` with ``sim(u, v) = x_u·x_v / (|x_u||x_v| + shrink)``.

    ``x_u`` is user u's binary row of the training matrix, ``N_k(u)`` its ``k`` most similar other
    users. The neighbour matrix is sparse (``n_users x k`` entries, built ``block_size`` users at a
    time), so scoring a batch is one sparse-sparse product: no users x users x items tensor.
    """

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        X = self.binary(train)
        self.X = X.astype(np.float32)
        self.W = cosine_topk(X, self.k, self.shrink, self.block_size).astype(np.float32)
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        s = np.asarray((self.W[users.cpu().numpy()] @ self.X).todense(), dtype=np.float32)
        out = torch.from_numpy(s)
        return out if items is None else out[:, items.cpu()]
