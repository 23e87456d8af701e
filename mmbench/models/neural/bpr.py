"""BPR-MF (Rendle et al. 2009): user and item embeddings trained with the pairwise BPR loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.models.base import Capabilities, Embedding, NeuralRecommender, sparse_adam_args


class BPR(NeuralRecommender):
    """``score(u, i) = p_u · q_i``; loss ``-log σ(s_ui - s_uj) + reg · (|p_u|² + |q_i|² + |q_j|²) / 2``
    averaged over the batch, with one sampled negative ``j`` per observed ``(u, i)``.

    ``sparse``: sparse embedding gradients and lazy Adam (``torch.optim.SparseAdam``, the configured Adam's ``lr``,
    ``betas``, ``eps``), which updates only the batch's rows. Dense Adam updates every row at every step, so a step
    costs O(users + items) and an epoch O(interactions x (users + items)): at 10^7 interactions (200,000 users,
    100,000 items) 0.51 s per step dense against 0.03 s sparse (``results/scaling``). Off by default: lazy Adam is
    another optimiser (rows absent from a batch keep their moments), and on ML-100K the dense step is faster.
    """

    capabilities = Capabilities(neural=True, user_level_dp=True)

    def __init__(
        self,
        embedding_dim: int = 64,
        reg: float = 1e-5,
        init_std: float = 0.04,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.embedding_dim, self.reg, self.init_std = embedding_dim, reg, init_std
        self.optimizer, self.sparse = optimizer, sparse
        if sparse:
            sparse_adam_args(optimizer)  # an optimizer without a sparse form fails here, before any work

    def build(self, train: Interactions) -> None:
        self.user_emb = Embedding(train.n_users, self.embedding_dim, sparse=self.sparse)
        self.item_emb = Embedding(train.n_items, self.embedding_dim, sparse=self.sparse)
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)

    def user_parameters(self) -> list[nn.Parameter]:
        return [self.user_emb.weight]

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        pu, qi, qj = self.user_emb(u), self.item_emb(i), self.item_emb(j)
        x = (pu * (qi - qj)).sum(-1)
        reg = (pu.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1)) / 2
        return (-F.logsigmoid(x) + self.reg * reg).mean()

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        q = self.item_emb.weight if items is None else self.item_emb(items)
        return self.user_emb(users) @ q.T
