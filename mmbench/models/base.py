"""The recommender interfaces: classic models fit in closed form or vectorised code, neural ones via Lightning."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Self

import torch
from torch import nn
from torch.utils.data import IterableDataset

from mmbench.data.interactions import Interactions
from mmbench.data.tensors import take


@dataclass(frozen=True)
class Capabilities:
    """What a model class does, declared once (``capabilities = Capabilities(...)``); the pipeline, the trainer
    and the evaluator read it instead of checking types or attributes.

    ``predicts_ratings``: implements ``predict(users, items)`` (RMSE / MAE are computed, ``trainer.monitor=rmse``
    is allowed). ``item_features``: reads the run's item features, given by ``set_features`` before fitting.
    ``user_features``: reads user features, given by ``set_user_features``. ``neural``: a
    :class:`NeuralRecommender` fitted by :class:`~mmbench.training.NeuralTrainer`, not by its own ``fit``.
    ``explains``: its score splits over its sources (``explain_sources()``: ``id``, each item modality,
    ``user_features``): ``gated_score(users, items, gates)`` scores ``(user, item)`` pairs with source ``s``'s input
    scaled by ``gates[:, s]`` (row ``k`` depends on gates row ``k`` only; gates 1: ``score``), ``additive`` says it is
    affine in the gates (the gradient is then an exact decomposition), ``explain_weights(users, items)`` gives the
    per-source weights the model computed (attention, gates) if any (:mod:`mmbench.evaluation.explain`).
    ``user_level_dp``: trainable by user-level DP-SGD (``privacy=dp``): its ``loss`` over one user's ``(u, i, j)``
    rows depends on no other user's data and training changes nothing but parameters (configuration-dependent
    exceptions: ``user_level_dp_blocker``).
    """

    predicts_ratings: bool = False
    item_features: bool = False
    user_features: bool = False
    neural: bool = False
    explains: bool = False
    user_level_dp: bool = False


_REQUIRED = {
    "predicts_ratings": ("predict",),
    "item_features": ("set_features",),
    "user_features": ("set_user_features",),
    "neural": ("build", "loss", "train_data"),
    "explains": ("explain_sources", "gated_score", "explain_weights"),
}


class Recommender(ABC):
    """``fit(train, val)`` then ``score(users)``: one row of item scores per user.

    ``score`` returns a new float tensor (callers mask it in place), on ``device``.
    Models that predict ratings also implement ``predict(users, items)`` and declare it in ``capabilities``.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A declaration and the methods behind it go together: fails at class definition otherwise."""
        super().__init_subclass__(**kwargs)
        caps = cls.capabilities
        if not isinstance(caps, Capabilities):
            raise TypeError(f"{cls.__name__}.capabilities must be a Capabilities, got {caps!r}")
        for flag, methods in _REQUIRED.items():
            missing = [m for m in methods if not callable(getattr(cls, m, None))]
            if getattr(caps, flag) and missing:
                raise TypeError(f"{cls.__name__} declares {flag}=True but has no {missing}")
        if callable(getattr(cls, "predict", None)) and not caps.predicts_ratings:
            raise TypeError(f"{cls.__name__} has predict() but does not declare Capabilities(predicts_ratings=True)")

    @abstractmethod
    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        """Learn from ``train``; ``val`` may be read for early stopping, never the test set."""

    @abstractmethod
    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``[len(users), n_items]`` (or ``[len(users), len(items)]`` for given items)."""

    def diagnostics(self) -> dict[str, float]:
        """Numbers to log after training (e.g. mean attention weight per modality); none by default."""
        return {}

    def for_release(self) -> Recommender:
        """The model as it may leave the run (a logged model file): scoring exactly as this one, holding no
        personal data beyond ids and learned parameters (e.g. no user feature table). ``self`` by default."""
        return self

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class NeuralRecommender(nn.Module, Recommender):
    """A torch module with a ``loss(batch)``; :class:`mmbench.training.NeuralTrainer` fits any of them.

    ``build(train)`` creates the parameters once the id space is known; ``train_data``
    gives the per-epoch training batches.
    """

    capabilities = Capabilities(neural=True)

    def __init__(self) -> None:
        super().__init__()

    @abstractmethod
    def build(self, train: Interactions) -> None:
        """Create parameters for ``train``'s id space (called once, before training)."""

    @abstractmethod
    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Scalar training loss of one batch."""

    @abstractmethod
    def train_data(self, train: Interactions, batch_size: int, seed: int) -> IterableDataset:
        """Batches of one epoch; iterating again gives the next epoch."""

    optimizer: Callable[..., torch.optim.Optimizer] | None = None  # set from the config's `model.optimizer`
    sparse: bool = False  # models with a `sparse` option: their id tables are `nn.Embedding(..., sparse=True)`

    def user_level_dp_blocker(self) -> str | None:
        """Why this model, as configured, cannot be trained by user-level DP-SGD although its class declares
        ``user_level_dp`` (e.g. a component that mixes users' data); None when it can."""
        if self.sparse:
            return "model.sparse=true: DP-SGD clips dense per-user gradients; set model.sparse=false"
        return None

    def configure_optimizer(
        self, params: list[nn.Parameter] | None = None
    ) -> torch.optim.Optimizer | list[torch.optim.Optimizer]:
        """The model's ``optimizer`` (a ``_partial_`` config) over ``params`` (default: all its parameters);
        Adam(lr=1e-3, foreach=True) without one (the multi-tensor Adam: the single-tensor one's updates bit for bit,
        faster on CPU, where torch's default is the single-tensor loop).

        With ``sparse``: ``torch.optim.SparseAdam`` (lazy Adam: only the batch's rows and their moments are updated)
        over the sparse embeddings' tables, with the configured Adam's ``lr``, ``betas``, ``eps``
        (:func:`sparse_adam_args`), and the configured optimizer over the other parameters (a list of two)."""
        params = list(self.parameters()) if params is None else params
        dense_optimizer = self.optimizer or partial(torch.optim.Adam, lr=1e-3, foreach=True)
        if not self.sparse:
            return dense_optimizer(params)
        tables = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding) and m.sparse}
        rows = [p for p in params if id(p) in tables]
        rest = [p for p in params if id(p) not in tables]
        optimizers = [torch.optim.SparseAdam(rows, **sparse_adam_args(self.optimizer))] if rows else []
        if rest:
            optimizers.append(dense_optimizer(rest))
        return optimizers[0] if len(optimizers) == 1 else optimizers

    def user_parameters(self) -> list[nn.Parameter]:
        """Per-user tables whose row ``u`` is read only for user ``u`` (user id embeddings): what a user's own
        profile is under ``privacy.scope=shared``. None by default."""
        return []

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        """Neural models are fitted by the trainer, which sits above the models: ``NeuralTrainer().fit(model,
        train, val)`` (the pipeline's fit stage does it with the run's ``trainer`` config)."""
        raise TypeError(
            f"{type(self).__name__} is trained by mmbench.training.NeuralTrainer: call "
            "NeuralTrainer(...).fit(model, train, val) instead of model.fit(train, val)"
        )

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")


def sparse_adam_args(optimizer: Callable[..., torch.optim.Optimizer] | None) -> dict:
    """The keyword arguments of ``SparseAdam`` taken from the configured optimizer (a ``_partial_`` of Adam: lr, betas,
    eps; ``foreach`` / ``fused`` choose the dense implementation and are not passed on); anything else has no sparse
    form and fails here (models call it in their constructor when ``sparse``, so the run stops before any work)."""
    if optimizer is None:
        return {"lr": 1e-3}
    func, kwargs = getattr(optimizer, "func", None), dict(getattr(optimizer, "keywords", None) or {})
    for implementation in ("foreach", "fused"):
        kwargs.pop(implementation, None)
    extra = sorted(set(kwargs) - {"lr", "betas", "eps"})
    if func not in (torch.optim.Adam, torch.optim.SparseAdam) or extra:
        name = getattr(func, "__name__", repr(optimizer))
        raise ValueError(
            f"model.sparse=true trains with torch.optim.SparseAdam; model.optimizer is {name}"
            + (f" with {extra}" if extra else "")
            + ": use torch.optim.Adam with lr, betas, eps only, or model.sparse=false"
        )
    return kwargs


class Embedding(nn.Embedding):
    """``nn.Embedding`` whose dense lookup is ``weight.index_select``: its backward is an ``index_add``, the same sums
    in the same order as the embedding's own backward (so the same weights, bit for bit), cheaper on CPU
    (``scripts/bench_train_loop.py``'s ``bare nn.Embedding`` side, ``results/overhead/train_loop.md``). A sparse
    table, or one with ``padding_idx``, ``max_norm`` or ``scale_grad_by_freq``, keeps ``nn.Embedding``'s lookup."""

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if self.sparse or self.padding_idx is not None or self.max_norm is not None or self.scale_grad_by_freq:
            return super().forward(indices)
        return take(self.weight, indices)
