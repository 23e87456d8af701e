"""VBPR (He & McAuley, AAAI 2016): BPR-MF plus a visual (here: any frozen content) factor."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.tensors import take
from mmbench.models.base import Capabilities, Embedding, sparse_adam_args
from mmbench.models.multimodal.base import MultimodalRecommender


class VBPR(MultimodalRecommender):
    """``s(u, i) = β_i + γ_u·γ_i + θ_u·(E f_i) + β'·f_i`` (user bias terms cancel in the pairwise loss).

    ``f_i`` concatenates the chosen modalities' frozen features, each scaled by its mean row norm so no
    modality dominates by scale; a missing modality is zeros. BPR loss with ``reg`` on ``γ, θ, β_i`` of
    the batch and ``reg_content`` on ``E`` and ``β'``.

    Explanations: additive, ``id`` = ``β_i + γ_u·γ_i``, each modality its block of ``θ_u·(E f_i) + β'·f_i``.

    ``sparse``: the id tables ``γ_u, γ_i, θ_u, β_i`` get sparse gradients and lazy Adam (``torch.optim.SparseAdam``),
    ``E`` and ``β'`` the configured Adam (:meth:`~mmbench.models.base.NeuralRecommender.configure_optimizer`): a
    step then costs the batch's rows, not every row of the tables (catalogues of ~10^5 users or items).
    """

    capabilities = Capabilities(item_features=True, neural=True, explains=True, user_level_dp=True)
    additive = True
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
        sparse: bool = False,
    ) -> None:
        super().__init__(modalities)
        self.embedding_dim, self.content_dim = embedding_dim, content_dim
        self.reg, self.reg_content, self.init_std, self.optimizer = reg, reg_content, init_std, optimizer
        self.sparse = sparse
        if sparse:
            sparse_adam_args(optimizer)  # an optimizer without a sparse form fails here, before any work

    def build(self, train: Interactions) -> None:
        self.check_features()
        parts = []
        self.blocks: list[slice] = []  # each modality's columns of ``content``
        for f in self.features.values():
            x = f.require_frozen("VBPR").astype(np.float32) * f.mask[:, None]
            scale = np.linalg.norm(x[f.mask], axis=1).mean() if f.mask.any() else 1.0
            start = self.blocks[-1].stop if self.blocks else 0
            self.blocks.append(slice(start, start + x.shape[1]))
            parts.append(x / max(float(scale), 1e-12))
        self.register_buffer("content", torch.as_tensor(np.concatenate(parts, 1)), persistent=False)
        k, k2, d = self.embedding_dim, self.content_dim, self.content.shape[1]
        self.gamma_u = Embedding(train.n_users, k, sparse=self.sparse)
        self.gamma_i = Embedding(train.n_items, k, sparse=self.sparse)
        self.theta_u = Embedding(train.n_users, k2, sparse=self.sparse)
        self.E = nn.Linear(d, k2, bias=False)
        self.beta_i = Embedding(train.n_items, 1, sparse=self.sparse)
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
        f = self.content if items is None else take(self.content, items)
        gi = self.gamma_i.weight if items is None else self.gamma_i(items)
        bi = self.beta_i.weight if items is None else self.beta_i(items)
        return gi, self.E(f), (bi + self.beta_c(f)).squeeze(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        gu, tu = self.gamma_u(u), self.theta_u(u)
        # a batch repeats items: project each distinct item's content once (2 x 2,048 rows of ML-100K hold at most
        # 1,682 items; the projection was most of a step)
        items, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
        g, e, b = (take(part, inverse) for part in self._item_parts(items))
        (gi, gj), (ei, ej), (bi, bj) = g.split(len(i)), e.split(len(i)), b.split(len(i))
        x = bi - bj + (gu * (gi - gj)).sum(-1) + (tu * (ei - ej)).sum(-1)
        reg = gu.pow(2).sum(-1) + tu.pow(2).sum(-1) + gi.pow(2).sum(-1) + gj.pow(2).sum(-1)
        reg = reg + self.beta_i(i).squeeze(-1) ** 2 + self.beta_i(j).squeeze(-1) ** 2
        reg_c = self.E.weight.pow(2).sum() + self.beta_c.weight.pow(2).sum()
        return (-F.logsigmoid(x) + self.reg * reg / 2).mean() + self.reg_content * reg_c / 2

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        gi, ei, bi = self._item_parts(items)
        return self.gamma_u(users) @ gi.T + self.theta_u(users) @ ei.T + bi[None, :]

    def explain_sources(self) -> list[str]:
        return ["id", *self.features]

    def gated_score(self, users: torch.Tensor, items: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Pair scores, the id term times ``gates[:, 0]``, modality ``m``'s content term times its gate."""
        out = gates[:, 0] * (self.beta_i(items).squeeze(-1) + (self.gamma_u(users) * self.gamma_i(items)).sum(-1))
        f, tu = take(self.content, items), self.theta_u(users)
        for k, cols in enumerate(self.blocks, 1):
            fm = f[:, cols]
            term = (tu * (fm @ self.E.weight[:, cols].T)).sum(-1) + fm @ self.beta_c.weight[0, cols]
            out = out + gates[:, k] * term
        return out

    def explain_weights(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}
