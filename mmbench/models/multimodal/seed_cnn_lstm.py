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
from mmbench.data.sampling import RatingSampler
from mmbench.data.tensors import take
from mmbench.models.base import Capabilities, Embedding
from mmbench.models.multimodal.base import MultimodalRecommender


class SeedCNNLSTM(MultimodalRecommender):
    """``r̂(u, i) = Dense(1)([enc_image(i); enc_text(i)])``, trained with MSE on the training ratings.

    ``predict`` clips the estimate to the training rating scale (as the rating models do); the loss reads the
    unclipped ``estimate`` (clipping would stop the gradients) and ``score`` ranks by it."""

    capabilities = Capabilities(predicts_ratings=True, item_features=True, neural=True)
    min_modalities = 1

    def __init__(
        self,
        modalities: Sequence[str] | None = ("image", "text"),
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        self.optimizer = optimizer
        self._table: torch.Tensor | None = None
        self._table_key: tuple[int, ...] | None = None

    def build(self, train: Interactions) -> None:
        self.check_features()
        if train.is_implicit:
            raise ValueError(f"{type(self).__name__} regresses ratings; the training data is implicit (all 1)")
        self.encoders = nn.ModuleDict({m: f.module() for m, f in self.features.items()})
        for m, f in self.features.items():
            self.register_buffer(f"mask_{m}", torch.as_tensor(f.mask, dtype=torch.float32), persistent=False)
        self.content_dim = sum(e.out_dim for e in self.encoders.values())
        self.dense = nn.Linear(self.content_dim, 1)
        self._table = None
        self.rating_min, self.rating_max = float(train.ratings.min()), float(train.ratings.max())

    def content(self, items: torch.Tensor) -> torch.Tensor:
        """Concatenated modality vectors (a missing modality gives zeros)."""
        masks = {m: take(getattr(self, f"mask_{m}"), items)[:, None] for m in self.encoders}
        return torch.cat([enc(items) * masks[m] for m, enc in self.encoders.items()], 1)

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """What the model computes per item, ``[len(items), 1]``: the seed's ``Dense(1)`` output."""
        return self.dense(self.content(items))

    def terms(self, items: torch.Tensor) -> torch.Tensor:
        """``item_terms`` of ``items``. Training: computed once per distinct item of the batch and gathered
        (the same loss and gradients as per event, a fraction of the CNN/LSTM work: popular items recur).
        Without gradients: rows of a table of all items, cached until the weights change."""
        if torch.is_grad_enabled():
            distinct, inverse = torch.unique(items, return_inverse=True)
            return take(self.item_terms(distinct), inverse)
        return take(self.item_table(), items)

    def item_table(self, batch: int = 512) -> torch.Tensor:
        """``item_terms`` of every item; recomputed only when a parameter has changed (or moved)."""
        params = list(self.parameters())
        key = (params[0].data_ptr(), *(p._version for p in params))
        if self._table is None or self._table_key != key:
            n = next(iter(self.features.values())).mask.shape[0]
            items = torch.arange(n, device=self.device)
            with torch.no_grad():
                self._table = torch.cat([self.item_terms(items[s : s + batch]) for s in range(0, n, batch)])
            self._table_key = key
        return self._table

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> RatingSampler:
        return RatingSampler(train, batch_size, seed)

    def estimate(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Unclipped rating estimates of the (user, item) pairs."""
        return self.terms(items)[:, 0]

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Ratings of the pairs, clipped to the training rating scale."""
        return self.estimate(users, items).clamp(self.rating_min, self.rating_max)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, r = batch
        return F.mse_loss(self.estimate(u, i), r)

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        t = self.item_table() if items is None else self.terms(items)
        return t[None, :, 0].expand(len(users), -1).clone()


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
        self.user_emb = Embedding(train.n_users, d)
        self.item_emb = Embedding(train.n_items, d)
        self.user_bias = Embedding(train.n_users, 1)
        self.content_proj = nn.Linear(self.content_dim, d, bias=False)
        for e in (self.user_emb, self.item_emb):
            nn.init.normal_(e.weight, std=0.01)
        nn.init.zeros_(self.user_bias.weight)

    def item_terms(self, items: torch.Tensor) -> torch.Tensor:
        """``[Dense(1)(c_i), q_i + W c_i]`` per item, ``[len(items), 1 + embedding_dim]``."""
        c = self.content(items)
        return torch.cat([self.dense(c), self.item_emb(items) + self.content_proj(c)], 1)

    def estimate(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        t = self.terms(items)
        return t[:, 0] + self.user_bias(users).squeeze(-1) + (self.user_emb(users) * t[:, 1:]).sum(-1)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, r = batch
        reg = self.user_emb(u).pow(2).sum(-1) + self.item_emb(i).pow(2).sum(-1)
        return F.mse_loss(self.estimate(u, i), r) + self.reg * reg.mean()

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        t = self.item_table() if items is None else self.terms(items)
        return t[None, :, 0] + self.user_bias(users) + self.user_emb(users) @ t[:, 1:].T
