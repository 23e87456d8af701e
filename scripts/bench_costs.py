"""Overhead of the compute-cost measurements (README "Compute cost"): on ML-100K, the FLOP count of BPR, LightGCN and
Mult-VAE after a one-epoch fit, and codecarbon's tracker started and stopped around nothing (twice: the first pays
its hardware detection). ``python scripts/bench_costs.py`` (needs $MMBENCH_DATA_DIR with ML-100K)."""

from __future__ import annotations

import tempfile
import time

from hydra.utils import instantiate

from mmbench.config import compose
from mmbench.pipeline import load_data
from mmbench.training import NeuralTrainer
from mmbench.training.costs import FitMeter, flop_costs


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-costs-") as work:
        for name in ("bpr", "lightgcn", "multivae"):
            cfg = compose([f"model={name}", "dataset=ml100k", f"paths.work_dir={work}"])
            _, split = load_data(cfg)
            model = instantiate(cfg.model)
            NeuralTrainer(max_epochs=1, enable_progress_bar=False).fit(model, split.train, None)
            t = time.perf_counter()
            metrics, _ = flop_costs(model, split.train, int(cfg.trainer.batch_size), 0, 1)
            counts = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
            print(f"{name}: flop_costs {time.perf_counter() - t:.2f} s ({counts})", flush=True)
    for i in range(2):
        t = time.perf_counter()
        with FitMeter(energy=True).measure():
            pass
        print(f"codecarbon tracker start + stop #{i + 1}: {time.perf_counter() - t:.2f} s", flush=True)


if __name__ == "__main__":
    main()
