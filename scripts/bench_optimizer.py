"""Single-tensor against multi-tensor Adam (``model.optimizer.foreach`` false / true) in ordinary mmbench runs: the
fit time of each model, and whether every metric of the two runs is identical (the updates are the same bit for bit).

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_optimizer.py [--models bpr bm3] [--epochs 10] [--repeats 3]

Each model runs ``--repeats`` times each way, alternating (false, true, false, ...), in this process (imports paid
once), ``experiment=<--experiment>`` with its conf/model defaults, ``trainer.max_epochs=--epochs`` and no early
stopping, one torch thread, no logger. ``fusion_rec`` is late fusion of the experiment's modalities. Prints a
Markdown table of median fit seconds and the speed-up; exits 1 if any metric differs between the two.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmbench.config import compose  # noqa: E402
from scripts.peers.common import run_mmbench  # noqa: E402

MODELS = ["bpr", "lightgcn", "multivae", "vbpr", "freedom", "bm3", "lattice", "fusion_rec"]
EXTRA = {"fusion_rec": ["fusion@model.fusion=late"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", default="mm_ml100k")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    rows, differ = [], []
    for m in a.models:
        base = [f"experiment={a.experiment}", f"model={m}", *EXTRA.get(m, []), "logger=none", "threads=1"]
        base += [f"trainer.max_epochs={a.epochs}", f"callbacks.early_stopping.patience={a.epochs}"]
        base += ["eval.progress=false", "trainer.enable_progress_bar=false"]
        fit: dict[bool, list[float]] = {False: [], True: []}
        metrics: dict[bool, dict] = {}
        for _ in range(a.repeats):
            for foreach in (False, True):
                res = run_mmbench(compose([*base, f"model.optimizer.foreach={foreach}"]))
                values = {k: v for k, v in res["metrics"].items() if k.split("/")[0] in ("test", "val", "fit")}
                fit[foreach].append(res["metrics"]["time/fit_s"])
                if metrics.setdefault(foreach, values) != values:
                    differ.append(f"{m}: foreach={foreach} differs between repeats")
        same = metrics[False] == metrics[True]
        if not same:
            keys = sorted(k for k in metrics[False] if metrics[False][k] != metrics[True].get(k))
            differ.append(f"{m}: {', '.join(keys[:5])}")
        single, multi = statistics.median(fit[False]), statistics.median(fit[True])
        rows.append((m, single, multi, single / multi, metrics[True].get("test/ndcg@20"), same))
        print(rows[-1], flush=True)
    load = os.getloadavg()
    print(
        f"\nmmbench {commit.stdout.strip()}, {platform.machine()}, {os.cpu_count()} cores, one torch thread, "
        f"load {load[0]:.2f} {load[1]:.2f}; experiment={a.experiment}, {a.epochs} epochs, median of {a.repeats}\n"
    )
    print("| model | fit s, single-tensor Adam | fit s, multi-tensor | speed-up | test NDCG@20 | all metrics equal |")
    print("|---|---|---|---|---|---|")
    for m, single, multi, ratio, ndcg, same in rows:
        print(f"| {m} | {single:.2f} | {multi:.2f} | {ratio:.2f}x | {ndcg:.4f} | {'yes' if same else 'NO'} |")
    for d in differ:
        print(f"differs: {d}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
