"""EASE (Steck 2019): a closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender


class EASE(Recommender):
    """``B = argmin |X - XB|² + λ|B|²`` subject to ``diag(B) = 0``; ``score(u) = x_u B``.

    Closed form: ``P = (XᵀX + λI)⁻¹``, ``B = I - P · diag(1 / diag(P))`` (then ``B_jj = 0``).
    One dense ``n_items x n_items`` solve (float64 for the inverse, float32 to score): the model
    is inherently quadratic in the catalogue, which EASE's authors accept up to ~10⁵ items.
    """

    def __init__(self, reg: float = 250.0) -> None:
        if reg <= 0:
            raise ValueError(f"model.reg must be > 0, got {reg}")
        self.reg = reg
        self.X: sp.csr_matrix | None = None
        self.B: np.ndarray | None = None

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        X = train.to_csr()
        X.data[:] = 1.0
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.reg
        P = np.linalg.inv(G)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.B = B.astype(np.float32)
        self.X = X.astype(np.float32)
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        B = self.B if items is None else self.B[:, items.cpu().numpy()]
        return torch.from_numpy(np.asarray(self.X[users.cpu().numpy()] @ B, dtype=np.float32))
