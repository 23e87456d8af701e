"""LightGCN (He et al. 2020): BPR-trained embeddings smoothed over the user-item graph."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.graph import normalized_adjacency, sparse_mm
from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.tensors import take
from mmbench.models.base import Embedding, NeuralRecommender


class LightGCN(NeuralRecommender):
    """``E⁽ˡ⁺¹⁾ = Â E⁽ˡ⁾`` with ``Â = D^{-1/2} A D^{-1/2}`` the symmetric-normalised adjacency of the
    bipartite graph (users and items as nodes, a training event as an edge); the final embeddings are
    the layer mean ``(E⁽⁰⁾ + … + E⁽ᴸ⁾) / (L + 1)`` and ``score(u, i) = e_u · e_i``.

    Loss: BPR on the propagated embeddings, with the L2 penalty on the batch's layer-0 (free)
    embeddings, ``reg · (|e⁰_u|² + |e⁰_i|² + |e⁰_j|²) / 2`` averaged over the batch, as in the paper.
    ``Â`` is a torch sparse tensor; propagation runs once per training step (one ``loss`` call), and
    once per parameter state for scoring: the propagated table is cached until the weights change.
    """

    def __init__(
        self,
        embedding_dim: int = 64,
        n_layers: int = 3,
        reg: float = 1e-4,
        init_std: float = 0.1,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__()
        if n_layers < 0 or embedding_dim < 1:
            raise ValueError(f"model: need n_layers>=0 and embedding_dim>=1, got {n_layers}, {embedding_dim}")
        self.embedding_dim, self.n_layers, self.reg, self.init_std = embedding_dim, n_layers, reg, init_std
        self.optimizer = optimizer
        self.n_users = self.n_items = 0
        self._cache: torch.Tensor | None = None
        self._cache_key: tuple[int, int, torch.device] | None = None

    def build(self, train: Interactions) -> None:
        self.n_users, self.n_items = train.n_users, train.n_items
        self.embedding = Embedding(train.n_users + train.n_items, self.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        self.register_buffer("adjacency", normalized_adjacency(train), persistent=False)
        self._cache = None

    def propagate(self) -> torch.Tensor:
        """The layer-mean embeddings of every node, ``[n_users + n_items, embedding_dim]``."""
        e = self.embedding.weight
        total = e
        for _ in range(self.n_layers):
            e = sparse_mm(self.adjacency, e)
            total = total + e
        return total / (self.n_layers + 1)

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        self._cache = None
        out = self.propagate()
        # index_select, not out[u]: its backward is an index_add (the same sums in the same order, so the same
        # weights) without the sort that advanced indexing's backward takes under deterministic algorithms
        rows = (u, self.n_users + i, self.n_users + j)
        eu, ei, ej = (out.index_select(0, r) for r in rows)
        x = (eu * (ei - ej)).sum(-1)
        e0u, e0i, e0j = (self.embedding.weight.index_select(0, r) for r in rows)
        reg = (e0u.pow(2).sum(-1) + e0i.pow(2).sum(-1) + e0j.pow(2).sum(-1)) / 2
        return (-F.logsigmoid(x) + self.reg * reg).mean()

    def final_embeddings(self) -> torch.Tensor:
        """Propagated embeddings for scoring, recomputed only when the weights have changed."""
        w = self.embedding.weight
        key = (w._version, w.data_ptr(), w.device)
        if self._cache is None or self._cache_key != key:
            with torch.no_grad():
                self._cache = self.propagate()
            self._cache_key = key
        return self._cache

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        e = self.final_embeddings()
        q = e[self.n_users :] if items is None else take(e, self.n_users + items)
        return take(e, users) @ q.T
