"""One setting's two values in ordinary mmbench runs: the fit time of each model, and whether every metric of the two
runs is identical (settings that must not change a result: the optimizer's implementation, how metrics are logged).

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_setting.py [--setting model.optimizer.foreach] \\
        [--values false true] [--logger none] [--models bpr bm3] [--epochs 10] [--repeats 3]

Each model runs ``--repeats`` times with each value, alternating (first, second, first, ...), in this process
(imports paid once), ``experiment=<--experiment>`` with its conf/model defaults, ``trainer.max_epochs=--epochs`` and
no early stopping, one torch thread. ``fusion_rec`` is late fusion of the experiment's modalities. ``--logger
mlflow`` records every run in a SQLite store in a temporary folder, and the per-epoch histories (``train/loss``,
``val/*``: keys, steps, values) must be equal too. Prints a Markdown table of median fit seconds and the speed-up of
the second value; exits 1 if any metric differs between the two.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmbench.config import compose  # noqa: E402
from scripts.peers.common import run_mmbench  # noqa: E402

MODELS = ["bpr", "lightgcn", "multivae", "vbpr", "freedom", "bm3", "lattice", "fusion_rec"]
EXTRA = {"fusion_rec": ["fusion@model.fusion=late"]}
COMPARED = ("test", "val", "fit")  # metric prefixes that must not change; time/*, memory, energy may


def histories(tracking_uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """The run's per-epoch curves (``train/*``, ``val/*``) as (step, value) lists."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    keys = [k for k in client.get_run(run_id).data.metrics if k.split("/")[0] in ("train", "val")]
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def measure(a: argparse.Namespace, store: Path) -> tuple[list[tuple], list[str]]:
    """Every model's runs with both values: its table row, and what differed."""
    logger = ["logger=none"]
    if a.logger == "mlflow":
        logger = ["logger=mlflow", f"logger.tracking_uri=sqlite:///{store}/mlflow.db", f"logger.artifact_dir={store}/a"]
    rows, differ = [], []
    for m in a.models:
        base = [f"experiment={a.experiment}", f"model={m}", *EXTRA.get(m, []), *logger, "threads=1"]
        base += [f"trainer.max_epochs={a.epochs}", f"callbacks.early_stopping.patience={a.epochs}"]
        base += ["eval.progress=false", "trainer.enable_progress_bar=false"]
        fit: dict[str, list[float]] = {v: [] for v in a.values}
        metrics: dict[str, dict] = {}
        for _ in range(a.repeats):
            for value in a.values:
                cfg = compose([*base, f"{a.setting}={value}"])
                res = run_mmbench(cfg)
                values = {k: v for k, v in res["metrics"].items() if k.split("/")[0] in COMPARED}
                if a.logger == "mlflow":
                    values["curves"] = histories(cfg.logger.tracking_uri, res["run_id"])
                fit[value].append(res["metrics"]["time/fit_s"])
                if metrics.setdefault(value, values) != values:
                    differ.append(f"{m}: {a.setting}={value} differs between repeats")
        first, second = (metrics[v] for v in a.values)
        same = first == second
        if not same:
            keys = sorted(k for k in first if first[k] != second.get(k))
            differ.append(f"{m}: {', '.join(keys[:5])}")
        t1, t2 = (statistics.median(fit[v]) for v in a.values)
        rows.append((m, t1, t2, t1 / t2, second.get("test/ndcg@20"), same))
        print(rows[-1], flush=True)
    return rows, differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--setting", default="model.optimizer.foreach", help="the config key compared")
    ap.add_argument("--values", nargs=2, default=["false", "true"], metavar=("FIRST", "SECOND"))
    ap.add_argument("--logger", choices=["none", "mlflow"], default="none")
    ap.add_argument("--experiment", default="mm_ml100k")
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-setting-") as store:
        rows, differ = measure(a, Path(store))
    load = os.getloadavg()
    print(
        f"\nmmbench {commit.stdout.strip()}, {platform.machine()}, {os.cpu_count()} cores, one torch thread, "
        f"load {load[0]:.2f} {load[1]:.2f}; experiment={a.experiment}, logger={a.logger}, {a.epochs} epochs, "
        f"median of {a.repeats}\n"
    )
    head = f"| model | fit s, {a.setting}={a.values[0]} | fit s, {a.values[1]} | speed-up | test NDCG@20 |"
    print(f"{head} all metrics equal |")
    print("|---|---|---|---|---|---|")
    for m, t1, t2, ratio, ndcg, same in rows:
        print(f"| {m} | {t1:.2f} | {t2:.2f} | {ratio:.2f}x | {ndcg:.4f} | {'yes' if same else 'NO'} |")
    for d in differ:
        print(f"differs: {d}", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
