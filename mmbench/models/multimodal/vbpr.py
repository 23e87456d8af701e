"""VBPR (He & McAuley, AAAI 2016): BPR-MF plus a visual (here: any frozen content) factor."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.models.base import Capabilities
from mmbench.models.multimodal.base import MultimodalRecommender


class VBPR(MultimodalRecommender):
    """``s(u, i) = β_i + γ_u·γ_i + θ_u·(E f_i) + β'·f_i`` (user bias terms cancel in the pairwise loss).

    ``f_i`` concatenates the chosen modalities' frozen features, each scaled by its mean row norm so no
    modality dominates by scale; a missing modality is zeros. BPR loss with ``reg`` on ``γ, θ, β_i`` of
    the batch and ``reg_content`` on ``E`` and ``β'``.
    """

    capabilities = Capabilities(item_features=True, neural=True, user_level_dp=True)
    min_modalities = 1

    def __init__(
        self,
        embedding_dim: int = 32,
        content_dim: int = 32,
        modalities: Sequence[str] | None = None,
        reg: float = 1e-4,
        reg_content: float = 1e-4,
        init_std: float = 0.1,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        self.embedding_dim, self.content_dim = embedding_dim, content_dim
        self.reg, self.reg_content, self.init_std, self.optimizer = reg, reg_content, init_std, optimizer

    def build(self, train: Interactions) -> None:
        self.check_features()
        parts = []
        for f in self.features.values():
            x = f.require_frozen("VBPR").astype(np.float32) * f.mask[:, None]
            scale = np.linalg.norm(x[f.mask], axis=1).mean() if f.mask.any() else 1.0
            parts.append(x / max(float(scale), 1e-12))
        self.register_buffer("content", torch.as_tensor(np.concatenate(parts, 1)), persistent=False)
        k, k2, d = self.embedding_dim, self.content_dim, self.content.shape[1]
        self.gamma_u = nn.Embedding(train.n_users, k)
        self.gamma_i = nn.Embedding(train.n_items, k)
        self.theta_u = nn.Embedding(train.n_users, k2)
        self.E = nn.Linear(d, k2, bias=False)
        self.beta_i = nn.Embedding(train.n_items, 1)
        self.beta_c = nn.Linear(d, 1, bias=False)
        for emb in (self.gamma_u, self.gamma_i, self.theta_u):
            nn.init.normal_(emb.weight, std=self.init_std)
        nn.init.normal_(self.E.weight, std=self.init_std / np.sqrt(d))
        nn.init.zeros_(self.beta_i.weight)
        nn.init.zeros_(self.beta_c.weight)

    def user_parameters(self) -> list[nn.Parameter]:
        return [self.gamma_u.weight, self.theta_u.weight]

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed)

    def _item_parts(self, items: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.content if items is None else self.content[items]
        gi = self.gamma_i.weight if items is None else self.gamma_i(items)
        bi = self.beta_i.weight if items is None else self.beta_i(items)
        return gi, self.E(f), (bi + self.beta_c(f)).squeeze(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        gu, tu = self.gamma_u(u), self.theta_u(u)
        gi, ei, bi = self._item_parts(i)
        gj, ej, bj = self._item_parts(j)
        x = bi - bj + (gu * (gi - gj)).sum(-1) + (tu * (ei - ej)).sum(-1)
        reg = gu.pow(2).sum(-1) + tu.pow(2).sum(-1) + gi.pow(2).sum(-1) + gj.pow(2).sum(-1)
        reg = reg + self.beta_i(i).squeeze(-1) ** 2 + self.beta_i(j).squeeze(-1) ** 2
        reg_c = self.E.weight.pow(2).sum() + self.beta_c.weight.pow(2).sum()
        return (-F.logsigmoid(x) + self.reg * reg / 2).mean() + self.reg_content * reg_c / 2

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        gi, ei, bi = self._item_parts(items)
        return self.gamma_u(users) @ gi.T + self.theta_u(users) @ ei.T + bi[None, :]
