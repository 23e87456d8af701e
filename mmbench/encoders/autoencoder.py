"""A denoising autoencoder as a content encoder: another encoder's frozen features (or a raw multi-hot) compressed to
a learnt bottleneck, trained on the training items' content only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder, torch_execution
from mmbench.encoders.cache import cached_extract


def _mlp(dims: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``dims`` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AutoencoderEncoder(Encoder):
    """The bottleneck of a denoising autoencoder (Vincent et al. 2008) over ``base``'s features.

    ``base`` (a frozen encoder: ``multihot`` for raw multi-hot content, ``tfidf``, ``sentence_transformer``,
    ``efficientnet_lite0``, ...) gives ``x`` per item; ``x`` is standardised per dimension, and the network
    ``MLP(d, *hidden_dims, bottleneck)`` -> ``MLP(bottleneck, *reversed(hidden_dims), d)`` (ReLU between layers, a
    linear bottleneck) learns to reconstruct the clean ``x`` (mean squared error) from ``x`` with each entry zeroed
    with probability ``noise`` (masking noise). The encoder half's output is the modality's features.

    Fitted on the ``fit`` rows only (the items of the training interactions, passed by the encoder stage): the
    standardisation, the network and ``base``'s own statistics (a TF-IDF vocabulary) never see the other items'
    content, so cold test items are encoded by a network that never saw them; ``transductive=True`` fits on every
    item (tagged ``encoder.<modality>.fit=all``). Items without the modality get zeros. Adam with ``lr``, ``epochs``
    passes over the fitted items in shuffled batches of ``batch_size``, seeded by ``seed`` (the global random state
    is left as it was). The cache key holds ``base``'s whole configuration and the fitted rows; with ``cache_dir``
    the base's features go through the feature cache too (one base extraction for any number of autoencoders).
    """

    fits_content = True

    def __init__(
        self,
        base: Encoder,
        bottleneck: int = 64,
        hidden_dims: Sequence[int] = (256,),
        noise: float = 0.2,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        seed: int = 0,
        transductive: bool = False,
        cache_dir: str | None = None,
    ) -> None:
        if not isinstance(base, Encoder) or base.trainable:
            raise ValueError(f"encoder base: expected a frozen mmbench Encoder, got {type(base).__name__}")
        if bottleneck < 1 or any(int(h) < 1 for h in hidden_dims):
            raise ValueError(f"encoder: bottleneck={bottleneck} and hidden_dims={list(hidden_dims)} must be >= 1")
        if not 0 <= noise < 1 or epochs < 1 or batch_size < 1 or lr <= 0:
            raise ValueError(
                f"encoder: noise={noise} must be in [0, 1), epochs={epochs} and batch_size={batch_size} >= 1, "
                f"lr={lr} > 0"
            )
        self._base = base
        self.bottleneck, self.hidden_dims, self.noise = bottleneck, [int(h) for h in hidden_dims], noise
        self.epochs, self.batch_size, self.lr, self.seed = epochs, batch_size, lr, seed
        self.transductive = transductive
        self._cache_dir = cache_dir  # where the base's features are cached (not part of the output: not in the key)

    @property
    def base(self) -> Encoder:
        return self._base

    def config(self) -> dict[str, Any]:
        """This encoder's arguments and ``base``'s whole configuration (both change the output)."""
        return {**super().config(), "base": self._base.config()}

    def execution(self) -> dict[str, Any]:
        """The network's training (torch, threads) and ``base``'s extraction."""
        return {**torch_execution(None), "base": self._base.execution()}

    def tags(self) -> dict[str, str]:
        return {"base": type(self._base).__name__, **{f"base.{k}": v for k, v in self._base.tags().items()}}

    def mask(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        return self._base.mask(content, item_ids)

    def network(self, dim: int) -> tuple[nn.Sequential, nn.Sequential]:
        """The encoder and decoder halves for ``dim``-dimensional inputs."""
        return _mlp([dim, *self.hidden_dims, self.bottleneck]), _mlp(
            [self.bottleneck, *reversed(self.hidden_dims), dim]
        )

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        have = np.asarray(self.mask(content, item_ids), bool)
        base_fit = self._base.fit_rows(fit)
        if self._cache_dir is None:
            x = np.asarray(self._base.extract(content, item_ids, fit=base_fit), np.float32)
        else:  # the base's own cache entry: the same as a run encoding the modality with the base alone
            x = cached_extract(self._base, content, item_ids, self._cache_dir, base_fit)
        rows = have if fit is None else have & np.asarray(fit, bool)
        if not rows.any():
            raise ValueError(f"AutoencoderEncoder: no {content.entity} to fit on has {content.modality!r} content")
        mean, std = x[rows].mean(0), x[rows].std(0)
        z = (x - mean) / np.where(std > 0, std, 1.0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            encoder, decoder = self.network(x.shape[1])
            self.fit_network(encoder, decoder, torch.from_numpy(z[rows]))
            with torch.no_grad():
                codes = encoder(torch.from_numpy(z)).numpy()
        out = np.zeros((len(have), self.bottleneck), np.float32)
        out[have] = codes[have]
        return out

    def fit_network(self, encoder: nn.Module, decoder: nn.Module, x: torch.Tensor) -> list[float]:
        """Fit the two halves to reconstruct ``x`` from its masked copies; the mean loss of each epoch."""
        params = [*encoder.parameters(), *decoder.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr, foreach=True)  # multi-tensor: same updates, faster on CPU
        losses = []
        for _ in range(self.epochs):
            order, total = torch.randperm(len(x)), 0.0
            for s in range(0, len(x), self.batch_size):
                clean = x[order[s : s + self.batch_size]]
                noisy = clean * (torch.rand_like(clean) >= self.noise)
                loss = (decoder(encoder(noisy)) - clean).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss) * len(clean)
            losses.append(total / len(x))
        self._losses = losses
        return losses
