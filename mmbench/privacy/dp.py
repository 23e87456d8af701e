"""User-level DP-SGD for neural recommenders: one user's whole training history is the privacy unit.

Each step samples users independently with probability ``q = batch_users / n_users`` (Poisson sampling, what
the accountant assumes); a sampled user contributes all of their training events (one fresh negative each). The
gradient of the model's loss over that user's events alone is that user's gradient; Opacus's
:class:`~opacus.optimizers.DPOptimizer` clips each user's gradient (over all parameters together) to
``max_grad_norm``, sums them, adds Gaussian noise of std ``noise_multiplier * max_grad_norm`` to every parameter
and divides by the expected number of users per step. The noise multiplier is calibrated by Opacus so that
``max_epochs`` epochs of ``round(1 / q)`` steps spend ``target_epsilon`` at ``delta`` (default ``1 / n_users``),
and Opacus's RDP accountant reports what was spent (``privacy/epsilon``).

Per-user gradients are computed one user at a time (one backward pass per sampled user, i.e. one pass over
the users per epoch): Opacus's own per-sample machinery computes per-*row* gradients and materialises a dense
embedding table per row, so per-user sums through it would cost a table per event.

What the guarantee covers: a model whose loss over one user's events depends on no other user's data and
whose training changes nothing but its parameters (declared by ``Capabilities.user_level_dp``). Graph models
(LightGCN, FREEDOM, BM3, LATTICE, ``fusion=graph`` with ``interaction_weight > 0``) propagate every user's edges
into every other user's gradient, and BatchNorm running statistics are updated without noise: both are refused.
The epoch selected on validation (early stopping, best checkpoint) reads the validation events outside the
mechanism: the (epsilon, delta) bound is for the training events.

``scope`` says what is released under the guarantee. ``model`` (default): every parameter, user id embeddings
included, is updated only by the clipped, noised sum: the whole trained model is (epsilon, delta)-DP with respect
to any one user's history. ``shared``: only the parameters shared by all users (item embeddings, item and user
towers, fusion) are; each user's own rows of the per-user tables (``model.user_parameters()``: user id
embeddings) are trained on that user's events alone, without clipping or noise, and must only serve that user
(joint differential privacy, Kearns et al. 2014: what other users see is DP with respect to this user; the user's
own recommendations and rows are not). A released model file then holds every user's rows and is not DP.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import IterableDataset

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler

if TYPE_CHECKING:
    from opacus.optimizers import DPOptimizer

    from mmbench.models.base import NeuralRecommender


class UserPoissonSampler(IterableDataset):
    """Each epoch: ``steps`` batches; in each, every user with training events is included independently with
    probability ``sample_rate``, with all of their events (sorted by user) and one uniform negative per event.
    Yields ``(users, items, negatives, bounds)``: user ``k`` of the batch owns rows ``bounds[k]:bounds[k+1]``
    (an empty batch is possible and is a step of noise only). Epoch ``e`` uses seed ``(seed, e)``."""

    def __init__(self, train: Interactions, sample_rate: float, steps: int, seed: int = 0) -> None:
        if not 0 < sample_rate <= 1:
            raise ValueError(f"UserPoissonSampler: sample_rate={sample_rate} must be in (0, 1]")
        self.pairs = PairwiseSampler(train, 1, seed)  # negatives: items the user has no training event with
        order = np.argsort(train.users, kind="stable")
        self.users, self.items = train.users[order].astype(np.int64), train.items[order].astype(np.int64)
        counts = np.bincount(self.users, minlength=train.n_users)
        self.indptr = np.concatenate([[0], np.cumsum(counts)])
        self.active = np.flatnonzero(counts)
        self.sample_rate, self.steps, self.seed, self.epoch = sample_rate, steps, seed, 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        self.epoch += 1
        for _ in range(self.steps):
            chosen = self.active[rng.random(len(self.active)) < self.sample_rate]
            starts, ends = self.indptr[chosen], self.indptr[chosen + 1]
            lengths = ends - starts
            # the rows of every chosen user, vectorised: start of each user repeated plus an offset within it
            offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            rows = np.repeat(starts, lengths) + offsets
            u, i = self.users[rows], self.items[rows]
            j = self.pairs.negatives(u, rng)
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            yield torch.from_numpy(u), torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(bounds)


class UserLevelDP:
    """``privacy=dp``: user-level DP-SGD (module docstring). ``delta`` None is ``1 / n_users`` (users with
    training events); ``batch_users`` the expected number of users per step; ``accountant`` Opacus's
    ``rdp`` or ``prv``; ``scope`` ``model`` or ``shared`` (module docstring)."""

    def __init__(
        self,
        target_epsilon: float = 8.0,
        max_grad_norm: float = 1.0,
        delta: float | None = None,
        batch_users: int = 64,
        accountant: str = "rdp",
        scope: str = "model",
    ) -> None:
        if not target_epsilon > 0:
            raise ValueError(f"privacy.target_epsilon={target_epsilon}: must be > 0 (no DP: privacy=audit)")
        if not max_grad_norm > 0:
            raise ValueError(f"privacy.max_grad_norm={max_grad_norm}: must be > 0")
        if delta is not None and not 0 < delta < 1:
            raise ValueError(f"privacy.delta={delta}: must be in (0, 1), or null for 1 / n_users")
        if batch_users < 1:
            raise ValueError(f"privacy.batch_users={batch_users}: must be at least 1")
        if accountant not in ("rdp", "prv"):
            raise ValueError(f"privacy.accountant={accountant!r}: choose rdp or prv")
        if scope not in ("model", "shared"):
            raise ValueError(f"privacy.scope={scope!r}: choose model (the whole model is DP) or shared (joint DP)")
        self.target_epsilon, self.max_grad_norm, self.delta = target_epsilon, max_grad_norm, delta
        self.batch_users, self.accountant_name, self.scope = batch_users, accountant, scope
        self.sample_rate = self.noise_multiplier = math.nan
        self.steps_per_epoch = self.n_users = 0
        self.target_delta = math.nan
        self.accountant: Any = None

    @staticmethod
    def check(model: NeuralRecommender) -> None:
        """Fails, naming why, when user-level DP-SGD cannot train ``model`` as configured (before any training)."""
        name = type(model).__name__
        if not model.capabilities.user_level_dp:
            raise ValueError(
                f"privacy=dp: {name} is not supported by user-level DP-SGD (its loss over one user's events must "
                "depend on no other user's data, e.g. not a graph model); supported: bpr, fusion_rec, vbpr"
            )
        reason = model.user_level_dp_blocker()
        if reason:
            raise ValueError(f"privacy=dp: {name}: {reason}")

    def prepare(
        self, model: NeuralRecommender, train: Interactions, max_epochs: int, seed: int = 0
    ) -> UserPoissonSampler:
        """After ``model.build(train)``: the noise multiplier for ``max_epochs`` epochs and the sampler."""
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier

        norms = [type(m).__name__ for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms:
            raise ValueError(f"privacy=dp: {type(model).__name__} has {norms}: running statistics escape the noise")
        self.n_users = n_users = int(np.count_nonzero(np.bincount(train.users, minlength=1)))
        self.target_delta = 1.0 / n_users if self.delta is None else self.delta
        self.sample_rate = min(1.0, self.batch_users / n_users)
        self.steps_per_epoch = max(1, round(1 / self.sample_rate))
        self.noise_multiplier = get_noise_multiplier(
            target_epsilon=self.target_epsilon,
            target_delta=self.target_delta,
            sample_rate=self.sample_rate,
            steps=max_epochs * self.steps_per_epoch,
            accountant=self.accountant_name,
        )
        self.accountant = create_accountant(self.accountant_name)
        return UserPoissonSampler(train, self.sample_rate, self.steps_per_epoch, seed)

    def personal(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters trained outside the mechanism: the model's per-user tables under ``scope=shared``."""
        return [p for p in model.user_parameters() if p.requires_grad] if self.scope == "shared" else []

    def optimizers(self, model: NeuralRecommender) -> list[torch.optim.Optimizer]:
        """The model's optimizer over the mechanism's parameters inside Opacus's DPOptimizer (its steps counted
        by the accountant), and under ``scope=shared`` the model's optimizer over the users' own rows."""
        personal = {id(p) for p in self.personal(model)}
        shared = [p for p in model.parameters() if p.requires_grad and id(p) not in personal]
        dp = self.wrap(model.configure_optimizer(shared))
        return [dp, model.configure_optimizer(self.personal(model))] if personal else [dp]

    def wrap(self, optimizer: torch.optim.Optimizer) -> DPOptimizer:
        """``optimizer`` inside Opacus's DPOptimizer, its steps counted by the accountant."""
        from opacus.optimizers import DPOptimizer

        dp = DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=self.sample_rate * self.n_users,
            loss_reduction="mean",
        )
        dp.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        return dp

    def per_user_gradients(self, model: NeuralRecommender, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Sets ``p.grad_sample`` (``[n_users_in_batch, *p.shape]``) of the mechanism's parameters to each user's
        gradient of ``model.loss`` over their own rows (and ``p.grad`` of the users' own rows under
        ``scope=shared``: each row gets its user's gradient); returns the users' losses."""
        u, i, j, bounds = batch
        params = [p for p in model.parameters() if p.requires_grad]
        personal = {id(p) for p in self.personal(model)}
        n = len(bounds) - 1
        samples = [
            torch.zeros_like(p) if id(p) in personal else torch.zeros((n, *p.shape), dtype=p.dtype, device=p.device)
            for p in params
        ]
        losses = torch.zeros(n)
        for k in range(n):  # one backward pass per user: the unit whose gradient is clipped
            s, e = int(bounds[k]), int(bounds[k + 1])
            loss = model.loss((u[s:e], i[s:e], j[s:e]))
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            for p, buf, g in zip(params, samples, grads, strict=True):
                if g is None:
                    continue
                if id(p) in personal:
                    buf += g  # user k's rows only
                else:
                    buf[k] = g
            losses[k] = loss.detach()
        for p, g in zip(params, samples, strict=True):
            if id(p) in personal:
                p.grad = g
            else:
                p.grad_sample = g
        return losses

    def spent(self) -> dict[str, float]:
        """What the run spent, as metrics: Opacus's accountant epsilon at ``delta`` after the steps taken."""
        history = self.accountant.history if self.accountant is not None else []
        steps = float(sum(n for _, _, n in history))  # (noise multiplier, sample rate, steps) runs
        eps = self.accountant.get_epsilon(self.target_delta) if steps else 0.0
        return {
            "privacy/epsilon": float(eps),
            "privacy/delta": float(self.target_delta),
            "privacy/noise_multiplier": float(self.noise_multiplier),
            "privacy/sample_rate": float(self.sample_rate),
            "privacy/steps": steps,
            "privacy/max_grad_norm": float(self.max_grad_norm),
        }
