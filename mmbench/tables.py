"""Comparative tables for papers, built from MLflow runs: Markdown, LaTeX (booktabs), CSV, plots.

Rows group runs by tags or params (e.g. ``model``), cells are mean ± sample std over the runs of a
row (seeds), the best value of each column is bold and the second underlined. Against a named
baseline row, a paired test over users (Wilcoxon signed-rank, or a paired t-test) on the per-user
test metrics of the runs' ``metrics/per_user_test.tsv`` artifacts, Holm-Bonferroni corrected across
the table, marks significant differences. Runs on different split fingerprints are refused.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from scipy import stats

from mmbench.evaluation.metrics import metric_for, metric_key

log = logging.getLogger(__name__)

SIG_MARK = "†"


class TableError(ValueError):
    """The requested runs cannot be put in one table."""


def load_runs(tracking_uri: str, experiment: str, filter_string: str = "") -> pd.DataFrame:
    """Finished runs of ``experiment`` as a frame: ``run_id``, ``artifact_uri``, ``tags.*``, ``params.*``, metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise TableError(f"no MLflow experiment {experiment!r} in {tracking_uri}; experiments: {names}")
    filt = "attributes.status = 'FINISHED'" + (f" and {filter_string}" if filter_string else "")
    rows = []
    for r in client.search_runs(
        [exp.experiment_id], filter_string=filt, max_results=50_000, order_by=["attributes.start_time ASC"]
    ):
        row = {"run_id": r.info.run_id, "artifact_uri": r.info.artifact_uri, "run_name": r.info.run_name}
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update(r.data.metrics)
        rows.append(row)
    if not rows:
        raise TableError(f"no finished runs in experiment {experiment!r} matching {filter_string!r}")
    return pd.DataFrame(rows)


def _column(runs: pd.DataFrame, key: str) -> str:
    """The frame column of a row key: a tag (``model``), ``tags.x``, ``params.x`` or a plain column."""
    for c in (key, f"tags.{key}", f"params.{key}"):
        if c in runs.columns:
            return c
    raise TableError(
        f"no tag or param {key!r} in the runs; tags: {sorted(c[5:] for c in runs.columns if c.startswith('tags.'))}"
    )


def check_single_split(runs: pd.DataFrame) -> str:
    """The one split fingerprint shared by all runs; runs on several splits raise :class:`TableError`."""
    if "tags.split_fingerprint" not in runs.columns or runs["tags.split_fingerprint"].isna().any():
        raise TableError("some runs have no split_fingerprint tag: cannot tell whether they are comparable")
    fps = runs.groupby("tags.split_fingerprint")["run_id"].apply(list)
    if len(fps) > 1:
        detail = "; ".join(f"{fp[:16]}: {len(ids)} runs (e.g. {ids[0]})" for fp, ids in fps.items())
        raise TableError(f"runs use {len(fps)} different splits, refusing to compare them in one table: {detail}")
    return str(fps.index[0])


@dataclass
class Table:
    """Per-row statistics of a set of runs, ready to render."""

    rows: list[str]
    metrics: list[str]
    mean: pd.DataFrame
    std: pd.DataFrame
    n: pd.Series
    pvalues: pd.DataFrame | None  # Holm-corrected, rows x metrics, NaN for the baseline
    baseline: str | None
    test: str
    alpha: float
    split_fingerprint: str
    run_ids: pd.DataFrame

    def significant(self, row: str, metric: str) -> bool:
        if self.pvalues is None or metric not in self.pvalues.columns:
            return False
        p = self.pvalues.loc[row, metric]
        return bool(np.isfinite(p) and p < self.alpha)

    def ranks(self, metric: str) -> dict[str, int]:
        """1 for the best row of a column, 2 for the second (direction from the metric)."""
        col = self.mean[metric].dropna()
        try:
            higher = metric_for(metric).higher_is_better
        except KeyError:  # times, memory: lower is better
            higher = False
        order = col.sort_values(ascending=not higher).index.tolist()
        return {r: i + 1 for i, r in enumerate(order[:2])}

    def cell(self, row: str, metric: str, fmt: str, bold: tuple[str, str], under: tuple[str, str]) -> str:
        m, s, n = self.mean.loc[row, metric], self.std.loc[row, metric], self.n[row]
        if not np.isfinite(m):
            return "–"
        text = f"{m:{fmt}}" + (f" ± {s:{fmt}}" if n > 1 and np.isfinite(s) else "")
        rank = self.ranks(metric).get(row)
        if rank == 1:
            text = bold[0] + text + bold[1]
        elif rank == 2:
            text = under[0] + text + under[1]
        if self.significant(row, metric):
            text += SIG_MARK
        return text

    def footnote(self) -> str:
        parts = [
            f"Mean ± sample standard deviation over runs (n per row: "
            f"{', '.join(f'{r}={int(self.n[r])}' for r in self.rows)}); best per column in bold, second underlined.",
            f"Split fingerprint {self.split_fingerprint[:16]}.",
        ]
        if self.baseline is not None and self.pvalues is not None:
            name = "Wilcoxon signed-rank" if self.test == "wilcoxon" else "paired t-test"
            parts.append(
                f"{SIG_MARK}: differs from {self.baseline} with p < {self.alpha} ({name} over test users on "
                f"per-user values averaged over seeds, Holm-Bonferroni corrected across the "
                f"{int(np.isfinite(self.pvalues.to_numpy()).sum())} comparisons of the table)."
            )
        return " ".join(parts)

    def markdown(self, fmt: str = ".4f") -> str:
        head = "| " + " | ".join([""] + self.metrics) + " |"
        sep = "|" + "---|" * (len(self.metrics) + 1)
        lines = [head, sep]
        for r in self.rows:
            cells = [self.cell(r, m, fmt, ("**", "**"), ("<u>", "</u>")) for m in self.metrics]
            lines.append("| " + " | ".join([r] + cells) + " |")
        return "\n".join(lines) + "\n\n" + self.footnote() + "\n"

    def latex(self, fmt: str = ".4f") -> str:
        def esc(s: str) -> str:
            return s.replace("_", r"\_").replace("%", r"\%").replace("@", "@").replace("&", r"\&")

        lines = [r"\begin{tabular}{l" + "r" * len(self.metrics) + "}", r"\toprule"]
        lines.append(" & ".join([""] + [esc(m) for m in self.metrics]) + r" \\")
        lines.append(r"\midrule")
        for r in self.rows:
            cells = [
                self.cell(r, m, fmt, (r"\textbf{", "}"), (r"\underline{", "}"))
                .replace("±", r"$\pm$")
                .replace(SIG_MARK, r"$^\dagger$")
                for m in self.metrics
            ]
            lines.append(" & ".join([esc(r)] + cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", "", "% " + self.footnote().replace(SIG_MARK, "dagger")]
        return "\n".join(lines) + "\n"

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame(index=pd.Index(self.rows, name="row"))
        out["n_runs"] = self.n
        for m in self.metrics:
            out[f"{m} mean"] = self.mean[m]
            out[f"{m} std"] = self.std[m]
            if self.pvalues is not None and m in self.pvalues.columns:
                out[f"{m} p_holm"] = self.pvalues[m]
        return out


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaNs ignored and kept)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx])]
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adj, 1.0)
    return out


def paired_test(a: np.ndarray, b: np.ndarray, test: str) -> float:
    """Two-sided p-value of a paired test between per-user values ``a`` and ``b``."""
    if test == "wilcoxon":
        if np.allclose(a, b):
            return 1.0
        return float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    if test == "ttest":
        return float(stats.ttest_rel(a, b).pvalue)
    raise TableError(f"unknown test {test!r}: choose wilcoxon or ttest")


def per_user_frame(artifact_uri: str) -> pd.DataFrame:
    """A run's ``metrics/per_user_test.tsv`` (local artifact stores are read directly)."""
    from urllib.parse import urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        path = Path(parsed.path) / "metrics" / "per_user_test.tsv"
    else:
        import mlflow.artifacts

        path = Path(mlflow.artifacts.download_artifacts(f"{artifact_uri}/metrics/per_user_test.tsv"))
    return pd.read_csv(path, sep="\t", dtype={"user": str})


def build(
    runs: pd.DataFrame,
    rows: Sequence[str] = ("model",),
    metrics: Sequence[str] = ("test/ndcg@10", "test/recall@10"),
    baseline: str | None = None,
    test: str = "wilcoxon",
    alpha: float = 0.05,
    per_user: dict[str, pd.DataFrame] | None = None,
) -> Table:
    """Aggregate runs into a :class:`Table`; ``per_user`` maps run id to its per-user frame (loaded if None)."""
    fp = check_single_split(runs)
    cols = [_column(runs, k) for k in rows]
    label = runs[cols].astype(str).agg(" / ".join, axis=1)
    keys = {m: metric_key(m) for m in metrics}
    for m, k in keys.items():
        if k not in runs.columns:
            raise TableError(f"metric {m!r} (logged as {k!r}) is in none of the runs")
    vals = runs[[keys[m] for m in metrics]].astype(float).set_axis(list(metrics), axis=1)
    grouped = vals.groupby(label, sort=False)
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.size()
    row_order = list(dict.fromkeys(label.tolist()))
    run_ids = pd.DataFrame({"row": label, "run_id": runs["run_id"]})
    pvalues = None
    if baseline is not None:
        if baseline not in row_order:
            raise TableError(f"baseline {baseline!r} is not a row; rows: {row_order}")
        per_user = per_user or {rid: per_user_frame(uri) for rid, uri in zip(runs["run_id"], runs["artifact_uri"])}
        pvalues = pd.DataFrame(np.nan, index=row_order, columns=list(metrics))
        for m in metrics:
            name = m.split("/", 1)[-1]
            if not m.startswith("test/") or "@" not in name:
                continue
            users = {r: _mean_per_user(per_user, run_ids.loc[run_ids["row"] == r, "run_id"], name) for r in row_order}
            base = users[baseline]
            for r in row_order:
                if r == baseline:
                    continue
                both = base.index.intersection(users[r].index)
                if len(both) != len(base) or len(both) != len(users[r]):
                    raise TableError(f"rows {r!r} and {baseline!r} were evaluated on different test users")
                pvalues.loc[r, m] = paired_test(users[r].loc[both].to_numpy(), base.loc[both].to_numpy(), test)
        flat = holm(pvalues.to_numpy().ravel())
        pvalues = pd.DataFrame(flat.reshape(pvalues.shape), index=pvalues.index, columns=pvalues.columns)
    return Table(
        row_order,
        list(metrics),
        mean.loc[row_order],
        std.loc[row_order],
        n.loc[row_order],
        pvalues,
        baseline,
        test,
        alpha,
        fp,
        run_ids,
    )


def _mean_per_user(per_user: dict[str, pd.DataFrame], run_ids: pd.Series, metric: str) -> pd.Series:
    frames = []
    for rid in run_ids:
        df = per_user[rid]
        if metric not in df.columns:
            raise TableError(f"run {rid}: per-user file has no column {metric!r}")
        frames.append(df.set_index("user")[metric])
    return pd.concat(frames, axis=1).mean(axis=1)


def plots(table: Table, runs: pd.DataFrame, out: Path) -> list[Path]:
    """metric@K curves, bar charts with error bars, and fit time against the first metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    quality = [m for m in table.metrics if "@" in m or m.split("/")[-1] in ("rmse", "mae")] or table.metrics
    fig, ax = plt.subplots(figsize=(1.2 * len(table.rows) + 3, 3.5))
    width = 0.8 / len(quality)
    x = np.arange(len(table.rows))
    for i, m in enumerate(quality):
        ax.bar(x + i * width, table.mean[m], width, yerr=table.std[m].fillna(0), capsize=3, label=m)
    ax.set_xticks(x + width * (len(quality) - 1) / 2, table.rows, rotation=30, ha="right")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "bars.png", dpi=120)
    plt.close(fig)
    made.append(out / "bars.png")

    families = sorted({m.split("@")[0] for m in table.metrics if "@" in m})
    for fam in families:
        ks = sorted({int(c.split("_at_")[1]) for c in runs.columns if c.startswith(metric_key(fam + "@"))})
        if len(ks) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r in table.rows:
            sel = table.run_ids.loc[table.run_ids["row"] == r, "run_id"]
            sub = runs.set_index("run_id").loc[sel]
            ax.plot(ks, [sub[metric_key(f"{fam}@{k}")].mean() for k in ks], marker="o", label=r)
        ax.set_xlabel("K")
        ax.set_ylabel(fam)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = fam.replace("/", "_") + "_at_k.png"
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        made.append(out / name)

    if "time/fit_s" in runs.columns:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        m0 = table.metrics[0]
        for r in table.rows:
            sel = table.run_ids.loc[table.run_ids["row"] == r, "run_id"]
            sub = runs.set_index("run_id").loc[sel]
            ax.scatter(sub["time/fit_s"].mean(), table.mean.loc[r, m0], label=r)
        ax.set_xscale("log")
        ax.set_xlabel("fit time (s)")
        ax.set_ylabel(m0)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "time_vs_accuracy.png", dpi=120)
        plt.close(fig)
        made.append(out / "time_vs_accuracy.png")
    return made


def write(table: Table, runs: pd.DataFrame, out_dir: str | Path, command: str, make_plots: bool = True) -> Path:
    """Write ``README.md`` (Markdown table + command), ``table.tex``, ``table.csv``, ``runs.tsv``, plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = table.markdown()
    (out / "table.tex").write_text(table.latex())
    table.frame().to_csv(out / "table.csv", float_format="%.6g")
    table.run_ids.to_csv(out / "runs.tsv", sep="\t", index=False)
    figs = plots(table, runs, out) if make_plots else []
    body = [
        f"# {out.name}",
        "",
        md,
        "Regenerate with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Made {time.strftime('%Y-%m-%d')} on {_machine()}, mmbench {_commit()}.",
        "",
        f"Runs used: `runs.tsv` ({len(table.run_ids)} runs). Also: `table.tex`, `table.csv`"
        + "".join(f", `{f.name}`" for f in figs)
        + ".",
    ]
    (out / "README.md").write_text("\n".join(body) + "\n")
    return out


class TableCallback(Callback):
    """Hydra callback for experiment configs: at the end of a multirun, tabulate that sweep's runs.

    In an experiment file::

        hydra:
          callbacks:
            table:
              _target_: mmbench.tables.TableCallback
              name: topn_ml100k
              metrics: [test/recall@20, test/ndcg@20]
              baseline: pop
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[str] = ("model",),
        metrics: Sequence[str] = ("test/recall@20", "test/ndcg@20"),
        baseline: str | None = None,
        test: str = "wilcoxon",
        alpha: float = 0.05,
        results_dir: str = "results",
        plots: bool = True,
    ) -> None:
        self.name, self.rows, self.metrics, self.baseline = name, list(rows), list(metrics), baseline
        self.test, self.alpha, self.results_dir, self.plots = test, alpha, results_dir, plots

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_id = str(Path(config.hydra.sweep.dir).resolve())
        runs = load_runs(config.logger.tracking_uri, config.experiment_name, f"tags.sweep_id = '{sweep_id}'")
        table = build(runs, self.rows, self.metrics, self.baseline, self.test, self.alpha)
        command = " ".join(["mmbench", *config.hydra.overrides.task])
        if config.hydra.overrides.task and not any(o.startswith("experiment=") for o in config.hydra.overrides.task):
            command = "mmbench -m " + " ".join(config.hydra.overrides.task)
        out = write(table, runs, Path(config.paths.work_dir) / self.results_dir / self.name, command, self.plots)
        print(table.markdown())
        print(f"table written to {out}")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), Python {platform.python_version()}"


def _commit() -> str:
    from mmbench.pipeline import git_commit

    return f"git {git_commit()[:12]}"


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmbench-table", description="Comparative tables from MLflow runs.")
    p.add_argument("name", help="output folder results/<name>/")
    p.add_argument("--experiment", default="mmbench", help="MLflow experiment name")
    p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlflow.db")
    p.add_argument("--filter", default="", help="MLflow filter string, e.g. \"tags.dataset = 'ml100k'\"")
    p.add_argument("--sweep-id", default=None, help="only runs of this multirun (its folder)")
    p.add_argument("--split-fingerprint", default=None, help="only runs on this split")
    p.add_argument("--rows", nargs="+", default=["model"], help="tags/params that name a row")
    p.add_argument("--metrics", nargs="+", default=["test/recall@20", "test/ndcg@20"])
    p.add_argument("--baseline", default=None, help="row to test every other row against")
    p.add_argument("--test", choices=["wilcoxon", "ttest"], default="wilcoxon")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--results-dir", default="results")
    p.add_argument("--no-plots", action="store_true")
    a = p.parse_args(argv)
    filters = [a.filter] if a.filter else []
    if a.sweep_id:
        filters.append(f"tags.sweep_id = '{Path(a.sweep_id).resolve()}'")
    if a.split_fingerprint:
        filters.append(f"tags.split_fingerprint = '{a.split_fingerprint}'")
    try:
        runs = load_runs(a.tracking_uri or default_tracking_uri(), a.experiment, " and ".join(filters))
        table = build(runs, a.rows, a.metrics, a.baseline, a.test, a.alpha)
    except TableError as e:
        print(f"mmbench-table: {e}", file=sys.stderr)
        return 2
    command = "mmbench-table " + " ".join(argv if argv is not None else sys.argv[1:])
    out = write(table, runs, Path(a.results_dir) / a.name, command, not a.no_plots)
    print(table.markdown())
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
