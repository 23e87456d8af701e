"""The seed example, ported faithfully: image CNN + text LSTM, concatenated, Dense(1), MSE on ratings, Adam.

The seed (a Keras snippet) is::

    image -> Conv2D(32, 3x3, relu) -> MaxPool(2x2) -> Flatten
    text  -> Embedding(10000, 128) -> LSTM(128)
    Concatenate -> Dense(1); compile(loss='mse', optimizer='adam'); fit([images, texts], ratings, epochs=10)

Its input is the item only, so it predicts one rating per item, the same for every user: as a recommender
it ranks all users' items identically. :class:`SeedCNNLSTMPersonal` adds user and item embeddings.
The branches are the run's trainable encoders ``encoders.image=seed_cnn`` (with ``out_dim: null``, the
flattened map as in the seed) and ``encoders.text=lstm``; any other encoders work too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.models.multimodal import MultimodalRecommender
from mmbench.training.samplers import RatingSampler


class SeedCNNLSTM(MultimodalRecommender):
    """``r̂(u, i) = Dense(1)([enc_image(i); enc_text(i)])``, trained with MSE on the training ratings."""

    min_modalities = 1

    def __init__(
        self,
        modalities: Sequence[str] | None = ("image", "text"),
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        self.optimizer = optimizer

    def build(self, train: Interactions) -> None:
        self.check_features()
        if train.is_implicit:
            raise ValueError(f"{type(self).__name__} regresses ratings; the training data is implicit (all 1)")
        self.encoders = nn.ModuleDict({m: f.module() for m, f in self.features.items()})
        for m, f in self.features.items():
            self.register_buffer(f"mask_{m}", torch.as_tensor(f.mask, dtype=torch.float32), persistent=False)
        self.content_dim = sum(e.out_dim for e in self.encoders.values())
        self.dense = nn.Linear(self.content_dim, 1)

    def content(self, items: torch.Tensor) -> torch.Tensor:
        """Concatenated modality vectors (a missing modality gives zeros)."""
        return torch.cat([enc(items) * getattr(self, f"mask_{m}")[items, None] for m, enc in self.encoders.items()], 1)

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> RatingSampler:
        return RatingSampler(train, batch_size, seed)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.dense(self.content(items)).squeeze(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, r = batch
        return F.mse_loss(self.predict(u, i), r)

    def _all_items(self, items: torch.Tensor | None) -> torch.Tensor:
        n = next(iter(self.features.values())).mask.shape[0]
        return torch.arange(n, device=self.device) if items is None else items

    def item_predictions(self, items: torch.Tensor, batch: int = 512) -> torch.Tensor:
        return torch.cat(
            [self.predict(items[s : s + batch], items[s : s + batch]) for s in range(0, len(items), batch)]
        )

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        pred = self.item_predictions(self._all_items(items))
        return pred[None, :].expand(len(users), -1).clone()


class SeedCNNLSTMPersonal(SeedCNNLSTM):
    """The seed model plus users: ``r̂ = Dense(1)(c_i) + b_u + p_u · (q_i + W c_i)`` with ``c_i`` the concatenated
    modality vectors, ``p_u``/``q_i`` user/item embeddings and ``b_u`` a user bias; MSE on ratings with
    ``reg`` times the squared norms of the batch's embeddings."""

    def __init__(
        self,
        modalities: Sequence[str] | None = ("image", "text"),
        embedding_dim: int = 32,
        reg: float = 1e-4,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities, optimizer)
        self.embedding_dim, self.reg = embedding_dim, reg

    def build(self, train: Interactions) -> None:
        super().build(train)
        d = self.embedding_dim
        self.user_emb = nn.Embedding(train.n_users, d)
        self.item_emb = nn.Embedding(train.n_items, d)
        self.user_bias = nn.Embedding(train.n_users, 1)
        self.content_proj = nn.Linear(self.content_dim, d, bias=False)
        for e in (self.user_emb, self.item_emb):
            nn.init.normal_(e.weight, std=0.01)
        nn.init.zeros_(self.user_bias.weight)

    def _parts(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.content(items)
        return self.dense(c).squeeze(-1), self.item_emb(items) + self.content_proj(c)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        base, qi = self._parts(items)
        return base + self.user_bias(users).squeeze(-1) + (self.user_emb(users) * qi).sum(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, r = batch
        reg = self.user_emb(u).pow(2).sum(-1) + self.item_emb(i).pow(2).sum(-1)
        return F.mse_loss(self.predict(u, i), r) + self.reg * reg.mean()

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        items = self._all_items(items)
        base, q = [], []
        for s in range(0, len(items), 512):
            b, qi = self._parts(items[s : s + 512])
            base.append(b)
            q.append(qi)
        base_t, q_t = torch.cat(base), torch.cat(q)
        return base_t[None, :] + self.user_bias(users) + self.user_emb(users) @ q_t.T
