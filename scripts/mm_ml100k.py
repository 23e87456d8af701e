"""Run the ML-100K-MM grid (resumable from MLflow) and write results/mm_ml100k/tables.md from the MLflow runs.

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_ml100k.py --seeds 0 1 2
    MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_ml100k.py --tables-only

Runs go to the MLflow experiment ``mm_ml100k`` of the store the runs use ($MLFLOW_TRACKING_URI, else
``sqlite:///$MMBENCH_WORK_DIR/mlflow.db``; ``--tracking-uri`` sets it for runs and tables). An entry with a
FINISHED run there is skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from mmbench.experiments.mm_ml100k import run_grid, tracking_uri, write_tables
from mmbench.reporting.rendering import to_markdown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--protocols", nargs="+", default=["warm", "cold", "cold_user"])
    ap.add_argument("--only", nargs="*", help="model names to run (default: all)")
    ap.add_argument("--tracking-uri", default=None, help="MLflow store (default: the one the runs use)")
    ap.add_argument("--budget-min", type=float, default=None, help="stop starting runs after this many minutes")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "mm_ml100k"))
    ap.add_argument("extra", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    extra = ["trainer.enable_progress_bar=false", *args.extra]
    if args.tracking_uri:
        extra.append(f"logger.tracking_uri='{args.tracking_uri}'")
    if not args.tables_only:
        budget = None if args.budget_min is None else args.budget_min * 60
        run_grid(args.seeds, args.protocols, extra, args.only, budget)
    uri = tracking_uri(extra)
    command = shlex.join(["python", "scripts/mm_ml100k.py", "--tables-only", "--tracking-uri", uri, "--out", args.out])
    built = write_tables(uri, Path(args.out), command)
    for t in built.values():
        print(to_markdown(t))


if __name__ == "__main__":
    main()
