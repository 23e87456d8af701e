"""Mult-DAE (Liang et al., WWW 2018, "Variational Autoencoders for Collaborative Filtering"): the denoising
counterpart of Mult-VAE, a deterministic autoencoder of a user's dropped-out training row with a multinomial
likelihood."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from mmbench.models.neural.multivae import MultAutoencoder, mlp


class MultDAE(MultAutoencoder):
    """``logits = MLP(n_items, *encoder_dims, *reversed(encoder_dims[:-1]), n_items)(dropout(x_u / |x_u|))`` with
    tanh after every layer but the last (the bottleneck ``encoder_dims[-1]`` included, as in the paper's notebook);
    the loss is the multinomial negative log-likelihood plus ``reg · Σ |W|²`` over the weight matrices (not the
    biases; the notebook's ``2 · lam · l2_loss``). Shared with Mult-VAE (:class:`MultAutoencoder`): the input
    normalisation and dropout, the initialisation, batches of users and fold-in scoring.

    Defaults are the paper's: ``[600, 200]``, input dropout 0.5, ``reg`` 0.01, 500 users per batch.
    """

    def __init__(
        self,
        encoder_dims: Sequence[int] = (600, 200),
        dropout: float = 0.5,
        reg: float = 0.01,
        users_per_batch: int | None = 500,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(encoder_dims, dropout, users_per_batch, optimizer)
        if reg < 0:
            raise ValueError(f"model.reg={reg} must be >= 0")
        self.reg = reg

    def layers(self) -> None:
        self.network = mlp([self.n_items, *self.encoder_dims, *reversed(self.encoder_dims[:-1]), self.n_items])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        """The logits for rows ``x`` (input dropout only in training mode)."""
        return (self.network(self.corrupted(x)),)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = self.user_rows(batch[0])
        weights = sum(m.weight.pow(2).sum() for m in self.network if isinstance(m, nn.Linear))
        return self.multinomial_nll(self(x)[0], x) + self.reg * weights
