"""NeuMF (He et al., WWW 2017, "Neural Collaborative Filtering"): a GMF tower (element-wise product of user and
item embeddings) and an MLP tower (ReLU layers over the concatenated embeddings of their own), fused by one output
layer, trained pointwise with the log loss against sampled negatives."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.models.base import Embedding, NeuralRecommender


class NeuMF(NeuralRecommender):
    """``s(u, i) = h · [p_u ⊙ q_i ; φ(P_u, Q_i)] + b`` with the GMF embeddings ``p, q`` (``gmf_dim``) and the MLP
    tower ``φ(P_u, Q_i) = ReLU(W_L … ReLU(W_1 [P_u ; Q_i] + b_1) … + b_L)`` (``mlp_layers``; the MLP embeddings
    ``P, Q`` have ``mlp_layers[0] / 2`` dimensions each, as in the paper's tower whose first layer is the
    concatenation). The score is the logit of the paper's ``ŷ_ui = σ(s(u, i))`` (same ranking).

    Loss (the paper's eq. 7): binary cross-entropy of ``σ(s)`` against 1 for every training event ``(u, i)`` and 0
    for its ``n_negatives`` uniformly sampled unseen items (:class:`PairwiseSampler`), averaged over the
    ``b · (1 + n_negatives)`` examples, plus ``reg`` times the mean over the batch's events of the squared norms of
    the embeddings it reads (0 by default, as in the paper).

    Defaults are the paper's: 8 predictive factors (``gmf_dim`` 8, ``mlp_layers`` [64, 32, 16, 8]), 4 negatives per
    positive, embeddings from ``N(0, 0.01²)``, the tower Glorot-uniform with zero biases (Keras' default in the paper's
    code), the output layer LeCun-uniform, Adam, lr 0.001. The
    paper's best NeuMF initialises from separately pretrained GMF and MLP models; this is its from-scratch variant
    (the paper's "NeuMF without pre-training", trained jointly with Adam).
    """

    def __init__(
        self,
        gmf_dim: int = 8,
        mlp_layers: Sequence[int] = (64, 32, 16, 8),
        n_negatives: int = 4,
        reg: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__()
        layers = [int(d) for d in mlp_layers]
        if gmf_dim < 1 or len(layers) < 2 or min(layers) < 1 or layers[0] % 2:
            raise ValueError(
                f"model: gmf_dim={gmf_dim} must be >= 1, mlp_layers={list(mlp_layers)} two or more sizes, all >= 1, "
                "the first even (it is the concatenation of the user's and the item's MLP embeddings)"
            )
        if n_negatives < 1 or reg < 0:
            raise ValueError(f"model: n_negatives={n_negatives} must be >= 1 and reg={reg} >= 0")
        self.gmf_dim, self.mlp_layers, self.n_negatives, self.reg = gmf_dim, layers, n_negatives, reg
        self.optimizer = optimizer

    def build(self, train: Interactions) -> None:
        half = self.mlp_layers[0] // 2
        self.user_gmf = Embedding(train.n_users, self.gmf_dim)
        self.item_gmf = Embedding(train.n_items, self.gmf_dim)
        self.user_mlp = Embedding(train.n_users, half)
        self.item_mlp = Embedding(train.n_items, half)
        self.tower = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.mlp_layers[:-1], self.mlp_layers[1:]))
        self.out = nn.Linear(self.gmf_dim + self.mlp_layers[-1], 1)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.01)
        for lin in self.tower:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        bound = (3 / self.out.in_features) ** 0.5  # LeCun uniform
        nn.init.uniform_(self.out.weight, -bound, bound)
        nn.init.zeros_(self.out.bias)

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed, n_negatives=self.n_negatives)

    def mlp(self, h: torch.Tensor) -> torch.Tensor:
        """The tower after its input: ReLU after every layer (the last included, as in the paper's code)."""
        for lin in self.tower:
            h = F.relu(lin(h))
        return h

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits ``s(u, i)`` of the pairs ``(users[k], items[k])`` (any matching shapes)."""
        gmf = self.user_gmf(users) * self.item_gmf(items)
        mlp = self.mlp(torch.cat([self.user_mlp(users), self.item_mlp(items)], dim=-1))
        return self.out(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        j = j.reshape(len(u), -1)  # [b, n_negatives]
        items = torch.cat([i[:, None], j], dim=1)
        users = u[:, None].expand_as(items)
        labels = torch.zeros_like(items, dtype=torch.float32)
        labels[:, 0] = 1
        loss = F.binary_cross_entropy_with_logits(self(users, items), labels)
        if self.reg:
            emb = (self.user_gmf(u), self.user_mlp(u), self.item_gmf(items), self.item_mlp(items))
            loss = loss + self.reg * sum(e.pow(2).sum() for e in emb) / len(u)
        return loss

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """All pairs of ``users`` x items, vectorised: the GMF part is a matrix product and the first MLP layer is
        split into its user and item halves (computed once per user and per item, then added); the remaining layers
        run on at most ``2**22`` hidden vectors at a time."""
        items = torch.arange(self.item_gmf.num_embeddings, device=self.device) if items is None else items
        users, items = users.to(self.device), items.to(self.device)
        w = self.out.weight[0]
        gmf = (self.user_gmf(users) * w[: self.gmf_dim]) @ self.item_gmf(items).T  # [U, I]
        first, half = self.tower[0], self.user_mlp.embedding_dim
        a = self.user_mlp(users) @ first.weight[:, :half].T + first.bias  # [U, h1]
        c = self.item_mlp(items) @ first.weight[:, half:].T  # [I, h1]
        step = max(1, (1 << 22) // max(1, len(items) * a.shape[1]))
        mlp = []
        for s in range(0, len(users), step):  # chunks of users bound the [U, I, h] intermediate
            h = F.relu(a[s : s + step, None, :] + c[None, :, :])
            for lin in self.tower[1:]:
                h = F.relu(lin(h))
            mlp.append(h @ w[self.gmf_dim :])
        return gmf + torch.cat(mlp) + self.out.bias
