"""mmbench's WMF beside the `implicit` library's ALS (same objective, same data), to justify writing WMF.

Both get c_ui = 1 + alpha (binary events), the same factors, reg and iterations, one thread; the script
prints fit time and validation NDCG@10 / Recall@20 of each on the topn_ml100k split (validation only).
`implicit` is a comparison-only dependency (the `peers` extra).

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_wmf_implicit.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.base import Recommender
from mmbench.models.wmf import WMF
from mmbench.splits import load_or_create

ROOT = Path(__file__).resolve().parents[1]
FACTORS, REG, ALPHA, ITERS = 64, 100.0, 20.0, 15


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
    ours = WMF(factors=FACTORS, reg=REG, alpha=ALPHA, iterations=ITERS).fit(split.train)
    ours_s = time.perf_counter() - t

    from implicit.cpu.als import AlternatingLeastSquares

    C = split.train.to_csr()
    C.data = (1.0 + ALPHA * C.data).astype(np.float32)  # implicit's confidence is the value itself
    results = {}
    for name, use_cg in (("implicit ALS (conjugate gradient)", True), ("implicit ALS (exact solve)", False)):
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
    for name, (fit_s, model) in [("mmbench WMF (exact, vectorised torch)", (ours_s, ours)), *results.items()]:
        r = ev.evaluate(model, split.val, [split.train]).means
        print(f"| {name} | {fit_s:.2f} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} |")


if __name__ == "__main__":
    main()
