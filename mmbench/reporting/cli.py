"""``mmbench-table``: comparative tables (Markdown, LaTeX, CSV, plots) in results/<name>/ from MLflow runs."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from mmbench.reporting.aggregation import build_tables, contribution_spec
from mmbench.reporting.rendering import to_markdown, write
from mmbench.reporting.runs import TableError, default_tracking_uri, load_runs
from mmbench.reporting.statistics import TESTS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmbench-table", description="Comparative tables from MLflow runs.")
    p.add_argument("name", help="output folder results/<name>/")
    p.add_argument("--experiment", default="mmbench", help="MLflow experiment name")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlflow.db")
    p.add_argument("--filter", default="", help="MLflow filter string, e.g. \"tags.dataset = 'ml100k'\"")
    p.add_argument("--sweep-id", default=None, help="only runs of this multirun (its folder)")
    p.add_argument("--split-fingerprint", default=None, help="only runs on this split")
    p.add_argument("--rows", nargs="+", default=["model"], help="tags/params that name a row")
    p.add_argument("--split-by", default=None, help="tag: one table per value (e.g. protocol)")
    p.add_argument("--metrics", nargs="+", default=["test/recall@20", "test/ndcg@20"])
    p.add_argument(
        "--costs",
        nargs="+",
        default=[],
        help="columns shown as means, not ranked; 'seeds': the seeds; 'compute': parameters, training and scoring "
        "FLOPs, fit time, fit peak memory, fit energy",
    )
    p.add_argument("--baseline", default=None, help="row to test every other row against, e.g. 'pop'")
    p.add_argument("--test", choices=TESTS, default="wilcoxon")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument(
        "--contribution",
        nargs="+",
        metavar="ARG",
        default=None,
        help="METRIC ROW_TAG COLUMN_TAG [COLUMN_VALUE ...]: a section of METRIC minus the baseline's",
    )
    p.add_argument("--means", nargs="+", default=[], help="metric prefixes averaged per row in a section each")
    p.add_argument("--rating-reference", action="store_true", help="test RMSE of mean predictors on the split")
    p.add_argument("--markdown", default="README.md", help="name of the Markdown file")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--no-plots", action="store_true")
    a = p.parse_args(argv)
    if a.contribution is not None and len(a.contribution) < 3:
        p.error("--contribution needs METRIC ROW_TAG COLUMN_TAG")
    filters = [a.filter] if a.filter else []
    if a.sweep_id:
        filters.append(f"tags.sweep_id = '{Path(a.sweep_id).resolve()}'")
    if a.split_fingerprint:
        filters.append(f"tags.split_fingerprint = '{a.split_fingerprint}'")
    contribution = None if a.contribution is None else contribution_spec(*a.contribution[:3], a.contribution[3:])
    try:
        runs = load_runs(a.tracking_uri or default_tracking_uri(), a.experiment, " and ".join(filters))
        tables = build_tables(
            runs,
            a.split_by,
            rows=a.rows,
            metrics=a.metrics,
            baseline=a.baseline,
            test=a.test,
            alpha=a.alpha,
            costs=a.costs,
            contribution=contribution,
            means=a.means,
            rating_ref=a.rating_reference,
        )
    except TableError as e:
        print(f"mmbench-table: {e}", file=sys.stderr)
        return 2
    command = "mmbench-table " + shlex.join(argv if argv is not None else sys.argv[1:])
    out = write(tables, runs, Path(a.results_dir) / a.name, command, not a.no_plots, a.markdown)
    for t in tables.values():
        print(to_markdown(t))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
