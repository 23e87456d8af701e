"""Why mmbench's WMF uses the `implicit` library: a hand-written exact ALS in torch beside `implicit`'s ALS.

Same objective (c_ui = 1 + alpha for a training event), factors, reg and iterations, one thread; prints
fit time and validation NDCG@10 / Recall@20 of each on the topn_ml100k split (validation only).

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_wmf_implicit.py
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR
from mmbench.data.interactions import Interactions
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.base import Recommender
from mmbench.splits import load_or_create

ROOT = Path(__file__).resolve().parents[1]
FACTORS, REG, ALPHA, ITERS = 64, 100.0, 20.0, 15


class TorchExactALS(Recommender):
    """The first WMF of mmbench (commit 3a6e556), kept here as the measured alternative.

    Minimises ``Σ_{u,i} c_ui (p_ui - x_u·y_i)² + reg (Σ|x_u|² + Σ|y_i|²)`` over *all* user-item pairs,
    with ``p_ui = 1`` for a training event (else 0) and confidence ``c_ui = 1 + alpha · r_ui``
    (``r_ui = 1``, or the rating when ``use_ratings``; ``c_ui = 1`` for unobserved pairs).

    Each half-step solves every user's (then item's) ridge problem exactly:
    ``(YᵀY + Yᵀ(C_u - I)Y + reg·I) x_u = Yᵀ C_u p_u``. The sparse part ``Σ_i (c_ui - 1) y_i y_iᵀ``
    of all users at once is one sparse x dense product with the items' flattened outer products
    (``n_items x factors²``), then a batched Cholesky solve — vectorised, no loop over users;
    rows are processed ``block_size`` at a time to bound memory (``block_size x factors²``).
    Runs on ``device`` (CPU or GPU) in float32.
    """

    def __init__(
        self,
        factors: int = 64,
        reg: float = 0.1,
        alpha: float = 10.0,
        iterations: int = 15,
        use_ratings: bool = False,
        init_std: float = 0.01,
        seed: int = 0,
        block_size: int = 4096,
        device: str = "cpu",
    ) -> None:
        if factors < 1 or iterations < 0 or reg < 0 or alpha < 0:
            raise ValueError(
                f"model: need factors>=1, iterations>=0, reg>=0, alpha>=0; got {factors}, {iterations}, {reg}, {alpha}"
            )
        self.factors, self.reg, self.alpha, self.iterations = factors, reg, alpha, iterations
        self.use_ratings, self.init_std, self.seed, self.block_size = use_ratings, init_std, seed, block_size
        self._device = torch.device(device)
        self.user_factors: torch.Tensor | None = None
        self.item_factors: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self._device

    def _weights(self, train: Interactions) -> sp.csr_matrix:
        """``c_ui - 1 = alpha · r_ui`` on the training events (users x items, CSR)."""
        C = train.to_csr("ratings" if self.use_ratings else "ones")
        C.data = (self.alpha * C.data).astype(np.float32)
        return C

    def fit(self, train: Interactions, val: Interactions | None = None) -> Self:
        g = torch.Generator().manual_seed(self.seed)
        X = torch.randn(train.n_users, self.factors, generator=g) * self.init_std
        Y = torch.randn(train.n_items, self.factors, generator=g) * self.init_std
        X, Y = X.to(self._device), Y.to(self._device)
        Cu = self._weights(train)
        Ci = Cu.T.tocsr()
        for _ in range(self.iterations):
            X = self.solve(Cu, Y)
            Y = self.solve(Ci, X)
        self.user_factors, self.item_factors = X, Y
        return self

    def solve(self, C: sp.csr_matrix, Y: torch.Tensor) -> torch.Tensor:
        """The exact least-squares rows ``x`` for fixed ``Y`` (``C``: the rows' ``c - 1``, CSR)."""
        f = Y.shape[1]
        base = Y.T @ Y + self.reg * torch.eye(f, dtype=Y.dtype, device=Y.device)
        outer = (Y[:, :, None] * Y[:, None, :]).reshape(len(Y), f * f)
        out = torch.empty(C.shape[0], f, dtype=Y.dtype, device=Y.device)
        for start in range(0, C.shape[0], self.block_size):
            rows = C[start : start + self.block_size]
            A = (_to_torch(rows, Y.device) @ outer).reshape(-1, f, f) + base
            # right-hand side Yᵀ C_u p_u = Σ_{i observed} (1 + (c_ui - 1)) y_i
            rows.data = rows.data + 1.0
            b = _to_torch(rows, Y.device) @ Y
            out[start : start + len(A)] = torch.cholesky_solve(b.unsqueeze(-1), torch.linalg.cholesky(A)).squeeze(-1)
        return out

    def loss(self, train: Interactions) -> float:
        """The objective at the current factors (dense over all pairs: for tests on small data)."""
        C = torch.as_tensor(self._weights(train).toarray(), dtype=torch.float64) + 1.0
        P = torch.as_tensor(train.to_csr().toarray() > 0, dtype=torch.float64)
        X, Y = self.user_factors.double().cpu(), self.item_factors.double().cpu()
        return float((C * (P - X @ Y.T) ** 2).sum() + self.reg * (X.pow(2).sum() + Y.pow(2).sum()))

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        Y = self.item_factors if items is None else self.item_factors[items.to(self._device)]
        return self.user_factors[users.to(self._device)] @ Y.T


def _to_torch(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A scipy sparse block as a torch sparse COO tensor on ``device``."""
    coo = m.tocoo()
    idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64)
    return torch.sparse_coo_tensor(
        idx, torch.as_tensor(coo.data, dtype=torch.float32), m.shape, device=device, check_invariants=False
    )


class Factors(Recommender):
    """Scores from fixed user / item factor tables."""

    def __init__(self, users: np.ndarray, items: np.ndarray) -> None:
        self.u, self.i = torch.as_tensor(users), torch.as_tensor(items)

    def fit(self, train, val=None):  # noqa: ANN001, ANN201
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        return self.u[users] @ (self.i if items is None else self.i[items]).T


def main() -> None:
    torch.set_num_threads(1)
    from threadpoolctl import threadpool_limits

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=topn_ml100k", f"paths.work_dir={ROOT}"])
    ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
    split = load_or_create(ds, instantiate(cfg.split), cfg.paths.split_dir)
    ev = Evaluator(ks=[10, 20], metrics=["recall", "ndcg"], progress=False)

    t = time.perf_counter()
    ours = TorchExactALS(factors=FACTORS, reg=REG, alpha=ALPHA, iterations=ITERS).fit(split.train)
    ours_s = time.perf_counter() - t

    from implicit.cpu.als import AlternatingLeastSquares

    C = split.train.to_csr()
    C.data = (1.0 + ALPHA * C.data).astype(np.float32)  # implicit's confidence is the value itself
    results = {}
    for name, use_cg in (
        ("implicit ALS, conjugate gradient (mmbench WMF)", True),
        ("implicit ALS (exact solve)", False),
    ):
        als = AlternatingLeastSquares(
            factors=FACTORS,
            regularization=REG,
            alpha=1.0,
            iterations=ITERS,
            use_cg=use_cg,
            num_threads=1,
            random_state=0,
        )
        with threadpool_limits(1):
            t = time.perf_counter()
            als.fit(C, show_progress=False)
            results[name] = (time.perf_counter() - t, Factors(als.user_factors, als.item_factors))
    print(f"| implementation | fit s ({ITERS} iterations, {FACTORS} factors, 1 thread) | val ndcg@10 | val recall@20 |")
    print("|---|---|---|---|")
    for name, (fit_s, model) in [("hand-written exact ALS (vectorised torch)", (ours_s, ours)), *results.items()]:
        r = ev.evaluate(model, split.val, [split.train]).means
        print(f"| {name} | {fit_s:.2f} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} |")


if __name__ == "__main__":
    main()
