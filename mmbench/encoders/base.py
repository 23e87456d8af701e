"""Encoders turn one modality's raw content into feature vectors, one row per item (``encoders``) or per
user (``user_encoders``: the same interface over a :class:`~mmbench.data.interactions.UserContent`).

Two kinds:

* frozen (``trainable = False``): :meth:`Encoder.extract` runs once per (encoder config, content);
  :func:`mmbench.encoders.cache.cached_extract` stores the result on disk under a key hashing both;
* trainable: :meth:`Encoder.module` returns an ``nn.Module`` mapping item ids to vectors, which a
  model owns and fine-tunes end to end.

Either way the pipeline hands models a :class:`ModalityFeatures` per modality.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmbench.data.interactions import ItemContent
from mmbench.data.tensors import take


def content_fingerprint(content: ItemContent) -> str:
    """SHA-256 of a modality's values and mask (lazy sequences may provide ``fingerprint()``)."""
    h = hashlib.sha256(content.modality.encode())
    h.update(np.ascontiguousarray(content.mask, dtype=bool).tobytes())
    values = content.values
    if hasattr(values, "fingerprint"):
        h.update(values.fingerprint().encode())
    elif isinstance(values, pd.DataFrame):
        h.update(str(list(values.columns)).encode())
        h.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
    elif isinstance(values, np.ndarray):
        h.update(str((values.shape, values.dtype)).encode())
        h.update(np.ascontiguousarray(values).tobytes())
    else:
        for v in values:
            h.update(np.asarray(v).tobytes() if not isinstance(v, str) else v.encode())
            h.update(b"\0")
    return h.hexdigest()


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of the distributions ``names`` (``absent`` for one not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def torch_execution(batch_size: int | None, *packages: str) -> dict[str, Any]:
    """How a float32 torch extraction ran, where that can change its last bits: torch's thread count, the batch
    size (kernels block and sum in another order) and the versions of torch and ``packages``."""
    spec: dict[str, Any] = {"threads": torch.get_num_threads(), "packages": package_versions("torch", *packages)}
    if batch_size is not None:
        spec["batch_size"] = batch_size
    return spec


# tag ``encoder.<modality>.weights`` of a trainable encoder: its weights are learnt in the run, from its training data
TRAINED = "trained"


class Encoder:
    """One modality's encoder; constructor arguments are its whole configuration.

    An encoder that fits statistics on the content (a vocabulary, IDF weights, z-scores) declares
    ``fits_content``: the encoder stage then passes ``fit``, the rows (items or users) of the training
    interactions, and it fits on those rows only (then encodes every row), unless it was built with
    ``transductive=True`` (fit on every row; tagged ``encoder.<modality>.fit=all``).
    """

    trainable: bool = False
    fits_content: bool = False

    def config(self) -> dict[str, Any]:
        """Everything that changes the output (goes into the cache key)."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", **self._params()}

    def execution(self) -> dict[str, Any]:
        """What besides :meth:`config` can change :meth:`extract`'s output, if only in the last bits (see
        :func:`torch_execution`); in the cache key, so cached features are read back only where they would be
        computed again bit for bit. Empty for encoders whose output is exact."""
        return {}

    def _params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def cache_key(self, content: ItemContent, fit: np.ndarray | None = None) -> str:
        spec = {"encoder": self.config(), "content": content_fingerprint(content)}
        if execution := self.execution():
            spec["execution"] = execution
        if fit is not None:  # the rows the statistics were fitted on (keys of encoders fitted on all rows unchanged)
            spec["fit"] = hashlib.sha256(np.packbits(np.asarray(fit, bool)).tobytes()).hexdigest()
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()

    def fit_rows(self, train: np.ndarray | None) -> np.ndarray | None:
        """The rows to fit on given the training rows ``train`` (bool per row): ``None`` (every row) for an
        encoder that fits nothing or runs ``transductive``."""
        if not self.fits_content or getattr(self, "transductive", False):
            return None
        return train

    def tags(self) -> dict[str, str]:
        """Run tags describing the weights used (e.g. ``weights=random``); keys are prefixed by the pipeline."""
        return {}

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        """float32 ``(n_items, dim)`` (``n_users`` for user content); rows of masked items are zeros. Frozen
        encoders only. ``fit`` (bool per row, ``None``: all): the rows statistics may be fitted on."""
        raise NotImplementedError(f"{type(self).__name__} is trainable: use module()")

    def module(self, content: ItemContent, fit: np.ndarray | None = None) -> nn.Module:
        """Trainable encoders: a module with ``out_dim`` whose ``forward(items)`` gives ``(len(items), out_dim)``;
        ``fit`` as in :meth:`extract`."""
        raise NotImplementedError(f"{type(self).__name__} is frozen: use extract()")

    def mask(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        """Which items have this modality (the content's mask, unless the encoder knows better)."""
        return np.asarray(content.mask, bool)


class FeatureTable(nn.Module):
    """Frozen features as a non-trainable buffer: ``forward(items)`` looks rows up."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("values", torch.as_tensor(np.asarray(values, np.float32)), persistent=False)
        self.out_dim = int(self.values.shape[1])

    def forward(self, items: torch.Tensor | None = None) -> torch.Tensor:
        return self.values if items is None else take(self.values, items)


class TokenModule(nn.Module):
    """A trainable encoder over each item's token ids: ``tokens`` ``(n_items, L)`` (0 pads), ``words`` (token id ->
    word, ``""`` for the pad) and ``embedding`` (the layer whose outputs token attributions scale)."""

    tokens: torch.Tensor
    words: list[str]
    embedding: nn.Embedding


@dataclass
class ModalityFeatures:
    """What a model receives for one modality: the mask, and either frozen ``values`` or a trainable encoder.
    Rows are items, or users for user features."""

    modality: str
    mask: np.ndarray  # (n_items,) bool
    values: np.ndarray | None = None  # frozen: (n_items, dim) float32
    encoder: Encoder | None = None  # trainable: builds the module from ``content``
    content: ItemContent | None = None
    tags: dict[str, str] = field(default_factory=dict)
    fit: np.ndarray | None = None  # trainable: the rows its content statistics are fitted on (None: all)

    @property
    def frozen(self) -> bool:
        return self.values is not None

    def module(self) -> nn.Module:
        """A fresh module ``items -> (b, dim)``: a lookup of frozen values, or the trainable encoder."""
        if self.values is not None:
            return FeatureTable(self.values)
        assert self.encoder is not None and self.content is not None
        return self.encoder.module(self.content, fit=self.fit)

    def require_frozen(self, who: str) -> np.ndarray:
        if self.values is None:
            raise ValueError(
                f"{who} needs frozen features for modality {self.modality!r}, but its encoder "
                f"{type(self.encoder).__name__} is trainable; pick a frozen encoder for it"
            )
        return self.values
