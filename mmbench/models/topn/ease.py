"""EASE (Steck 2019): a closed-form item-item linear autoencoder with a zero diagonal."""

from __future__ import annotations

import os
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender

# bytes per entry of the n_items x n_items problem at the peak of fit: the float64 Gram matrix, and inside
# np.linalg.inv its float64 working copy, identity / solution buffer and output
BYTES_PER_ENTRY = 4 * 8


def available_memory() -> int:
    """Bytes this machine can still give (``MemAvailable`` of ``/proc/meminfo``; else free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def memory_needed(n_items: int) -> int:
    """Bytes EASE's fit needs at its peak for ``n_items`` items: ``32 n²`` (four dense float64 item x item
    matrices while the Gram matrix is inverted)."""
    return BYTES_PER_ENTRY * n_items * n_items


class EASE(Recommender):
    """``B = argmin |X - XB|² + λ|B|²`` subject to ``diag(B) = 0``; ``score(u) = x_u B``.

    Closed form: ``P = (XᵀX + λI)⁻¹``, ``B = I - P · diag(1 / diag(P))`` (then ``B_jj = 0``).
    One dense ``n_items x n_items`` solve (float64 for the inverse, float32 to score): the model
    is inherently quadratic in the catalogue (:func:`memory_needed`: 32 bytes per item pair at the peak, 320 GB
    for 10⁵ items). ``fit`` refuses, before any work, a catalogue whose inverse would not fit in
    ``max_memory_gb`` (None: the memory this machine has available), naming both amounts.
    """

    def __init__(self, reg: float = 250.0, max_memory_gb: float | None = None) -> None:
        if reg <= 0:
            raise ValueError(f"model.reg must be > 0, got {reg}")
        if max_memory_gb is not None and max_memory_gb <= 0:
            raise ValueError(f"model.max_memory_gb must be > 0 or null, got {max_memory_gb}")
        self.reg = reg
        self.max_memory_gb = max_memory_gb
        self.X: sp.csr_matrix | None = None
        self.B: np.ndarray | None = None

    def check_memory(self, n_items: int) -> None:
        """Raise :class:`MemoryError` when the dense solve for ``n_items`` needs more than the memory allowed."""
        need = memory_needed(n_items)
        if self.max_memory_gb is not None:
            have, source = self.max_memory_gb * 2**30, f"model.max_memory_gb={self.max_memory_gb:g}"
        else:
            have, source = available_memory(), "available on this machine (MemAvailable)"
        if need > have:
            raise MemoryError(
                f"EASE on {n_items:,} items needs about {need / 2**30:.1f} GB for its dense item x item inverse "
                f"(32 bytes x {n_items:,}²), more than the {have / 2**30:.1f} GB {source}; use fewer items "
                "(e.g. a k-core or popularity cut), a sparse item-item model (itemknn), or a larger machine"
            )

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        self.check_memory(train.n_items)
        X = train.to_csr()
        X.data[:] = 1.0
        # co-occurrence counts are exact in float32 and float64 alike: cast the sparse product, not a dense copy
        G = (X.T @ X).astype(np.float64).toarray()
        G[np.diag_indices_from(G)] += self.reg
        P = np.linalg.inv(G)
        del G
        d = np.diag(P).copy()
        P /= -d[None, :]  # = -P / d bit for bit (IEEE division is sign-symmetric), without another n² matrix
        P[np.diag_indices_from(P)] = 0.0
        self.B = P.astype(np.float32)
        self.X = X.astype(np.float32)
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        B = self.B if items is None else self.B[:, items.cpu().numpy()]
        return torch.from_numpy(np.asarray(self.X[users.cpu().numpy()] @ B, dtype=np.float32))
