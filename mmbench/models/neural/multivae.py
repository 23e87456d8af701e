"""Mult-VAE (Liang et al., WWW 2018, "Variational Autoencoders for Collaborative Filtering"): a user's whole
training row is encoded to a Gaussian latent and decoded to a multinomial over all items."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import UserSampler
from mmbench.models.base import NeuralRecommender


def mlp(dims: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``dims`` with tanh between them (none after the last)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(dims) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class MultAutoencoder(NeuralRecommender):
    """What Mult-VAE and Mult-DAE (Liang et al. 2018) share: a user is their whole 0/1 training row ``x_u``,
    L2-normalised and dropped out at the input, encoded by an MLP and decoded to logits over every item; the loss is
    the multinomial log-likelihood ``-Σ_i x_ui log softmax(logits_u)_i``; a user is scored from their own training row
    (fold-in: no per-user parameter), ``score`` being the first output of ``forward``. Linear layers are initialised
    as in the paper's notebook: Xavier-uniform weights, ``N(0, 0.001²)`` biases truncated at 2σ. Batches are
    ``users_per_batch`` users (``None``: the trainer's ``batch_size``). Subclasses give ``layers`` (built in
    ``build``), ``forward`` and ``loss``."""

    def __init__(
        self,
        encoder_dims: Sequence[int],
        dropout: float,
        users_per_batch: int | None,
        optimizer: Callable[..., torch.optim.Optimizer] | None,
    ) -> None:
        super().__init__()
        dims = [int(d) for d in encoder_dims]
        if not dims or min(dims) < 1:
            raise ValueError(f"model.encoder_dims={list(encoder_dims)}: need at least the latent size, all >= 1")
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
        if users_per_batch is not None and users_per_batch < 1:
            raise ValueError(f"model.users_per_batch={users_per_batch} must be >= 1 (or null: trainer.batch_size)")
        self.encoder_dims, self.dropout = dims, dropout
        self.users_per_batch, self.optimizer = users_per_batch, optimizer
        self.n_items = 0

    @abstractmethod
    def layers(self) -> None:
        """Create the encoder / decoder modules for ``self.n_items`` items."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For training rows ``x``: the logits over all items first, then whatever the loss also needs."""

    def build(self, train: Interactions) -> None:
        self.n_items = train.n_items
        csr = train.to_csr().astype(np.float32)
        csr.data[:] = 1  # one count per (user, item) pair: the multinomial's observed items
        self.rows: sp.csr_matrix = csr
        self.layers()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.trunc_normal_(m.bias, std=0.001, a=-0.002, b=0.002)

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> UserSampler:
        return UserSampler(train, self.users_per_batch or batch_size, seed)

    def user_rows(self, users: torch.Tensor) -> torch.Tensor:
        """The users' 0/1 training rows, dense ``[len(users), n_items]``, on the model's device."""
        x = self.rows[users.cpu().numpy()].toarray()
        return torch.from_numpy(x).to(self.device)

    def corrupted(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: ``x`` L2-normalised per row, then dropped out (training mode only)."""
        return F.dropout(F.normalize(x, dim=1), self.dropout, training=self.training)

    @staticmethod
    def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``-mean_u Σ_i x_ui log softmax(logits_u)_i``."""
        return -(F.log_softmax(logits, dim=1) * x).sum(1).mean()

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        logits = self(self.user_rows(users))[0]
        return logits if items is None else logits[:, items.to(logits.device)]


class MultiVAE(MultAutoencoder):
    """Encoder ``x_u -> L2-normalise -> dropout -> MLP(n_items, *encoder_dims[:-1], 2·latent)`` gives ``mu`` and
    ``logvar`` (``latent = encoder_dims[-1]``); in training ``z = mu + ε·exp(logvar/2)``, at scoring ``z = mu``;
    the decoder mirrors the encoder, ``MLP(latent, ..., n_items)`` (tanh between layers), and its logits are the
    user's scores (fold-in: a user is scored from their own training row, no per-user parameter).

    Loss per batch of users (the paper's eq. 9, as in its notebook): ``-mean_u Σ_i x_ui log softmax(logits_u)_i
    + β · mean_u KL(q(z|x_u) ‖ N(0, I))`` with ``β = min(beta_max, step / total_anneal_steps)`` (``step`` counts the
    training batches seen before this one, from 0; ``total_anneal_steps=0``: ``β = beta_max`` throughout).
    Defaults are the paper's: ``[600, 200]``, input dropout 0.5, ``beta_max`` 0.2 reached by linear annealing over
    ``total_anneal_steps`` 200,000 (at 0.2 after 40,000 batches, as in the notebook and RecBole), Xavier-uniform
    weights and ``N(0, 0.001²)`` biases (truncated at 2σ), 500 users per batch. RecBole differs: Xavier-normal weights,
    zero biases, the anneal step counted from 1, and batches of training *events* (a user appears once per event).

    ``users_per_batch`` is the batch size (users); ``None`` takes the trainer's ``batch_size``. ``sample_std`` scales
    ``ε``: 1 is the paper's ``ε ~ N(0, I)``; RecBole 1.2.1 draws ``ε ~ N(0, 0.01² I)``, which makes its Mult-VAE
    nearly deterministic in training (``sample_std=0.01`` reproduces it; see results/peers_recbole).
    """

    def __init__(
        self,
        encoder_dims: Sequence[int] = (600, 200),
        dropout: float = 0.5,
        beta_max: float = 0.2,
        total_anneal_steps: int = 200_000,
        users_per_batch: int | None = 500,
        sample_std: float = 1.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(encoder_dims, dropout, users_per_batch, optimizer)
        if beta_max < 0 or total_anneal_steps < 0:
            raise ValueError(f"model: beta_max={beta_max} and total_anneal_steps={total_anneal_steps} must be >= 0")
        if sample_std < 0:
            raise ValueError(f"model.sample_std={sample_std} must be >= 0")
        self.beta_max, self.total_anneal_steps, self.sample_std = beta_max, total_anneal_steps, sample_std
        self.step = 0

    def layers(self) -> None:
        latent = self.encoder_dims[-1]
        self.encoder = mlp([self.n_items, *self.encoder_dims[:-1], 2 * latent])
        self.decoder = mlp([latent, *reversed(self.encoder_dims[:-1]), self.n_items])

    def build(self, train: Interactions) -> None:
        super().build(train)
        self.step = 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, ``mu`` and ``logvar`` for rows ``x`` (dropout and sampling only in training mode)."""
        mu, logvar = self.encoder(self.corrupted(x)).chunk(2, dim=1)
        z = mu + self.sample_std * torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def beta(self) -> float:
        """The KL weight of the next training batch."""
        if self.total_anneal_steps == 0:
            return self.beta_max
        return min(self.beta_max, self.step / self.total_anneal_steps)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = self.user_rows(batch[0])
        logits, mu, logvar = self(x)
        nll = self.multinomial_nll(logits, x)
        kl = (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1)).sum(1).mean()
        beta = self.beta()
        if self.training:
            self.step += 1
        return nll + beta * kl
