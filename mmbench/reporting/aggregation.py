"""Comparative tables for papers, built from MLflow runs: Markdown, LaTeX (booktabs), CSV, plots.

Rows group runs by tags or params (e.g. ``model``, or ``model fusion modalities``); ``split_by`` (e.g.
``protocol``) cuts the runs into one table per value of a tag. Cells are mean ± sample std over the runs of a
row (seeds; of several runs of one row and seed only the latest counts), the best value of each metric column
is bold and the second underlined; cost columns (times, parameter counts, the seeds) show means and are not
ranked. Against a named baseline row, a paired test over users (Wilcoxon signed-rank, or a paired t-test) on
the per-user test metrics of the runs' ``metrics/per_user_test.tsv`` artifacts, Holm-Bonferroni corrected
across the table, marks significant differences. Runs of one table on different split fingerprints are
refused. Optional sections under a table: the contribution of two row tags over the baseline, means of
diagnostic metrics (``fusion/attention_*``), and the test RMSE of trivial rating predictors on the split.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from mmbench.evaluation.metrics import metric_for, metric_key

log = logging.getLogger(__name__)

SIG_MARK = "†"
SEEDS = "seeds"  # the cost column listing each row's seeds (tag ``seed``)


class TableError(ValueError):
    """The requested runs cannot be put in one table."""


def load_runs(tracking_uri: str, experiment: str, filter_string: str = "") -> pd.DataFrame:
    """Finished runs of ``experiment`` as a frame: ``run_id``, ``artifact_uri``, ``start_time``, ``tags.*``,
    ``params.*``, metrics; oldest first."""
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
        row = {
            "run_id": r.info.run_id,
            "artifact_uri": r.info.artifact_uri,
            "run_name": r.info.run_name,
            "start_time": r.info.start_time,
        }
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


def row_labels(runs: pd.DataFrame, rows: Sequence[str]) -> pd.Series:
    """Each run's row name: its row keys' values joined by `` / ``."""
    return runs[[_column(runs, k) for k in rows]].astype(str).agg(" / ".join, axis=1)


def check_single_split(runs: pd.DataFrame) -> str:
    """The one split fingerprint shared by all runs; runs on several splits raise :class:`TableError`."""
    if "tags.split_fingerprint" not in runs.columns or runs["tags.split_fingerprint"].isna().any():
        raise TableError("some runs have no split_fingerprint tag: cannot tell whether they are comparable")
    fps = runs.groupby("tags.split_fingerprint")["run_id"].apply(list)
    if len(fps) > 1:
        detail = "; ".join(f"{fp[:16]}: {len(ids)} runs (e.g. {ids[0]})" for fp, ids in fps.items())
        raise TableError(f"runs use {len(fps)} different splits, refusing to compare them in one table: {detail}")
    return str(fps.index[0])


def latest_per_seed(runs: pd.DataFrame, label: pd.Series) -> pd.DataFrame:
    """Of several runs of one row and seed (a re-run), keep only the latest (by ``start_time``) and log it."""
    if "tags.seed" not in runs.columns:
        return runs
    order = runs.sort_values("start_time", kind="stable") if "start_time" in runs.columns else runs
    key = label.loc[order.index] + " | seed " + order["tags.seed"].astype(str)
    dup = key.duplicated(keep="last") & order["tags.seed"].notna()
    for k in key[dup].unique():
        ids = order.loc[key == k, "run_id"].tolist()
        log.warning("%s: %d runs, keeping the latest %s (dropping %s)", k, len(ids), ids[-1], ", ".join(ids[:-1]))
    return runs.drop(index=order.index[dup])


def artifact(artifact_uri: str, path: str) -> Path:
    """A local path to an artifact (file or folder) of a run; remote stores are downloaded."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path) / path
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(f"{artifact_uri}/{path}"))


def per_user_frame(artifact_uri: str) -> pd.DataFrame:
    """A run's ``metrics/per_user_test.tsv``."""
    return pd.read_csv(artifact(artifact_uri, "metrics/per_user_test.tsv"), sep="\t", dtype={"user": str})


def split_folder(run: pd.Series) -> Path:
    """A run's split files: the folder of its ``split_dir`` tag, else the copy in its artifacts (``split/``)."""
    d = run.get("tags.split_dir")
    if isinstance(d, str) and (Path(d) / "train.tsv").is_file():
        return Path(d)
    return artifact(str(run["artifact_uri"]), "split")


def _read_part(folder: Path, part: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{part}.tsv", sep="\t", dtype={"user": str, "item": str})


def rating_reference(folder: Path) -> dict[str, float]:
    """Test RMSE of two trivial rating predictors on a saved split: the global training mean, and each item's
    training mean (the global mean for items without training ratings)."""
    train, test = _read_part(folder, "train"), _read_part(folder, "test")
    mu = train["rating"].mean()
    pred_item = test["item"].map(train.groupby("item")["rating"].mean()).fillna(mu).to_numpy()
    r = test["rating"].to_numpy(float)
    return {
        "global training mean": float(np.sqrt(np.mean((r - mu) ** 2))),
        "item training mean": float(np.sqrt(np.mean((r - pred_item) ** 2))),
    }


def sparse_users(folder: Path, quantile: float) -> pd.Index:
    """The users of ``sparse/<metric>``: at most the ``quantile`` quantile of training events among all users
    of the split (users without training events count 0), as the evaluator selects them."""
    parts = [_read_part(folder, p)["user"] for p in ("train", "val", "test") if (folder / f"{p}.tsv").is_file()]
    n = parts[0].value_counts().reindex(pd.concat(parts).unique(), fill_value=0)
    return n.index[n.to_numpy() <= np.quantile(n.to_numpy(), quantile)]


@dataclass(frozen=True)
class Contribution:
    """Section: ``metric`` of each row minus the baseline row's, one row tag down (``rows``) and one across
    (``columns``; ``column_values`` picks and orders them), over the rows that equal the baseline on every
    other row tag (e.g. fusion x modalities of ``fusion_rec`` against ``fusion_rec`` without modalities)."""

    metric: str
    rows: str
    columns: str
    column_values: tuple[str, ...] = ()


@dataclass
class Section:
    """A small table printed under the main one: a caption and a frame (NaN printed as –)."""

    name: str
    caption: str
    frame: pd.DataFrame
    fmt: str = ".4f"

    def markdown(self) -> str:
        f = self.frame
        lines = [self.caption, "", "| " + " | ".join([f.index.name or "", *map(str, f.columns)]) + " |"]
        lines.append("|" + "---|" * (len(f.columns) + 1))
        for idx, row in f.iterrows():
            lines.append("| " + " | ".join([str(idx), *(_num(v, self.fmt) for v in row)]) + " |")
        return "\n".join(lines)


def _num(v: Any, fmt: str) -> str:
    return f"{v:{fmt}}" if v is not None and np.isfinite(v) else "–"


def _cost(v: float) -> str:
    return _num(v, ",.0f" if np.isfinite(v) and abs(v) >= 100 else ".2f")


@dataclass
class Table:
    """Per-row statistics of a set of runs, ready to render."""

    rows: list[str]
    row_tags: pd.DataFrame  # rows x row keys: each row's tag values
    metrics: list[str]
    mean: pd.DataFrame  # rows x (metrics + costs)
    std: pd.DataFrame
    n: pd.Series
    pvalues: pd.DataFrame | None  # Holm-corrected, rows x metrics, NaN for the baseline and untested metrics
    baseline: str | None
    test: str
    alpha: float
    split_fingerprint: str
    run_ids: pd.DataFrame  # one row per run used: row, run_id, row keys, seed, split, metric values
    costs: list[str] = field(default_factory=list)
    seeds: pd.Series | None = None  # row -> its seeds, when the costs include ``seeds``
    sections: list[Section] = field(default_factory=list)
    split: tuple[str, str] | None = None  # (split_by tag, value) of a table of :func:`build_tables`

    def significant(self, row: str, metric: str) -> bool:
        if self.pvalues is None or metric not in self.pvalues.columns:
            return False
        p = self.pvalues.loc[row, metric]
        return bool(np.isfinite(p) and p < self.alpha)

    def section(self, name: str) -> Section:
        for s in self.sections:
            if s.name == name:
                return s
        raise KeyError(f"no section {name!r}; sections: {[s.name for s in self.sections]}")

    def ranks(self, metric: str) -> dict[str, int]:
        """1 for the best rows of a column, 2 for the second best value (ties share; direction from the metric)."""
        col = self.mean[metric].dropna()
        try:
            higher = metric_for(metric).higher_is_better
        except KeyError:  # times, memory: lower is better
            higher = False
        ranks = col.rank(method="dense", ascending=not higher)
        return {r: int(k) for r, k in ranks.items() if k <= 2}

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

    def cost_cell(self, row: str, cost: str) -> str:
        if cost == SEEDS:
            seeds = list(self.seeds[row]) if self.seeds is not None else []
            return ",".join(map(str, seeds)) + (" (n=1)" if len(seeds) == 1 else "")
        return _cost(self.mean.loc[row, cost])

    def _cells(self, row: str, fmt: str, bold: tuple[str, str], under: tuple[str, str]) -> list[str]:
        return [
            *self.row_tags.loc[row].tolist(),
            *(self.cell(row, m, fmt, bold, under) for m in self.metrics),
            *(self.cost_cell(row, c) for c in self.costs),
        ]

    def footnote(self) -> str:
        if self.seeds is not None:
            parts = ["Mean ± sample standard deviation over seeds (column seeds; n=1: one run, no ±);"]
        else:
            parts = [
                f"Mean ± sample standard deviation over runs (n per row: "
                f"{', '.join(f'{r}={int(self.n[r])}' for r in self.rows)});"
            ]
        parts[0] += " best per metric column in bold, second underlined."
        if [c for c in self.costs if c != SEEDS]:
            parts.append(f"{', '.join(c for c in self.costs if c != SEEDS)}: mean over the row's runs, not ranked.")
        parts.append(f"Split fingerprint {self.split_fingerprint[:16]}.")
        if self.baseline is not None and self.pvalues is not None:
            name = "Wilcoxon signed-rank" if self.test == "wilcoxon" else "paired t-test"
            tested = [m for m in self.metrics if self.pvalues[m].notna().any()]
            parts.append(
                f"Baseline of the tests: {self.baseline}. {SIG_MARK}: differs from it with p < {self.alpha} "
                f"({name} over test users on per-user values averaged over seeds, Holm-Bonferroni corrected across "
                f"the {int(np.isfinite(self.pvalues.to_numpy()).sum())} comparisons of the table; tested: "
                f"{', '.join(tested) or 'none'})."
            )
        return " ".join(parts)

    def markdown(self, fmt: str = ".4f") -> str:
        head = "| " + " | ".join([*self.row_tags.columns, *self.metrics, *self.costs]) + " |"
        lines = [head, "|" + "---|" * (len(self.row_tags.columns) + len(self.metrics) + len(self.costs))]
        for r in self.rows:
            lines.append("| " + " | ".join(self._cells(r, fmt, ("**", "**"), ("<u>", "</u>"))) + " |")
        return "\n\n".join(["\n".join(lines), self.footnote(), *(s.markdown() for s in self.sections)]) + "\n"

    def latex(self, fmt: str = ".4f") -> str:
        def esc(s: str) -> str:
            return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

        k = len(self.row_tags.columns)
        lines = [r"\begin{tabular}{" + "l" * k + "r" * (len(self.metrics) + len(self.costs)) + "}", r"\toprule"]
        lines.append(" & ".join(esc(c) for c in [*self.row_tags.columns, *self.metrics, *self.costs]) + r" \\")
        lines.append(r"\midrule")
        for r in self.rows:
            cells = self._cells(r, fmt, (r"\textbf{", "}"), (r"\underline{", "}"))
            cells = [esc(c) for c in cells[:k]] + [
                c.replace("±", r"$\pm$").replace(SIG_MARK, r"$^\dagger$") for c in cells[k:]
            ]
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}", "", "% " + self.footnote().replace(SIG_MARK, "dagger")]
        return "\n".join(lines) + "\n"

    def frame(self) -> pd.DataFrame:
        out = self.row_tags.copy()
        out.index.name = "row"
        out["n_runs"] = self.n
        if self.seeds is not None:
            out[SEEDS] = self.seeds.map(lambda s: ",".join(map(str, s)))
        for m in self.metrics:
            out[f"{m} mean"] = self.mean[m]
            out[f"{m} std"] = self.std[m]
            if self.pvalues is not None and m in self.pvalues.columns:
                out[f"{m} p_holm"] = self.pvalues[m]
        for c in self.costs:
            if c != SEEDS:
                out[f"{c} mean"] = self.mean[c]
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


def build(
    runs: pd.DataFrame,
    rows: Sequence[str] = ("model",),
    metrics: Sequence[str] = ("test/ndcg@10", "test/recall@10"),
    baseline: str | None = None,
    test: str = "wilcoxon",
    alpha: float = 0.05,
    per_user: dict[str, pd.DataFrame] | None = None,
    costs: Sequence[str] = (),
    contribution: Contribution | None = None,
    means: Sequence[str] = (),
    rating_ref: bool = False,
) -> Table:
    """Aggregate runs into a :class:`Table`.

    ``per_user`` maps run id to its per-user frame (loaded if None). ``costs``: metrics shown as means, not
    ranked or tested (missing ones as –), ``seeds`` for the row's seeds. Sections: ``contribution`` (needs the
    baseline), ``means`` (metric prefixes such as ``fusion/attention_``), ``rating_ref`` (from the split files).
    """
    for m in metrics:
        if metric_key(m) not in runs.columns:
            raise TableError(f"metric {m!r} (logged as {metric_key(m)!r}) is in none of the runs")
    cols = [_column(runs, k) for k in rows]
    label = row_labels(runs, rows)
    row_order = list(dict.fromkeys(label.tolist()))  # by each row's first run, re-runs included
    runs = latest_per_seed(runs, label)
    label = label.loc[runs.index]
    fp = check_single_split(runs)
    row_tags = runs[cols].astype(str).set_axis(list(rows), axis=1).groupby(label, sort=False).first()
    row_tags = row_tags.loc[row_order]
    values = [*metrics, *(c for c in costs if c != SEEDS)]
    vals = pd.DataFrame(
        {c: pd.to_numeric(runs.get(metric_key(c), np.nan), errors="coerce") for c in values}, index=runs.index
    )
    grouped = vals.groupby(label, sort=False)
    mean, std, n = grouped.mean().loc[row_order], grouped.std(ddof=1).loc[row_order], grouped.size().loc[row_order]
    seeds = None
    if SEEDS in costs:
        if "tags.seed" not in runs.columns:
            raise TableError("cost column 'seeds' needs the runs' seed tag")
        seeds = runs["tags.seed"].groupby(label).agg(lambda s: sorted(s, key=_seed_order)).loc[row_order]
    run_ids = pd.DataFrame({"row": label, "run_id": runs["run_id"]})
    for k, c in zip(rows, cols):
        run_ids[k] = runs[c]
    for c in ("tags.seed", "tags.split_fingerprint"):
        if c in runs.columns:
            run_ids[c.removeprefix("tags.")] = runs[c]
    run_ids = pd.concat([run_ids, vals, _prefixed(runs, means)], axis=1)
    pvalues = None
    if baseline is not None:
        if baseline not in row_order:
            raise TableError(f"baseline {baseline!r} is not a row; rows: {row_order}")
        pvalues = _pvalues(runs, label, row_order, metrics, baseline, test, per_user)
    t = Table(
        row_order,
        row_tags,
        list(metrics),
        mean,
        std,
        n,
        pvalues,
        baseline,
        test,
        alpha,
        fp,
        run_ids,
        list(costs),
        seeds,
    )
    if contribution is not None:
        if baseline is None:
            raise TableError("a contribution section needs a baseline row")
        section = _contribution(t, contribution)
        if len(section.frame):  # no row differs from the baseline in the compared tags: nothing to show
            t.sections.append(section)
    for prefix in means:
        cols_p = _prefixed(runs, [prefix])
        m = cols_p.groupby(label, sort=False).mean().dropna(how="all")
        if not m.empty:
            m = m.loc[[r for r in row_order if r in m.index]].set_axis(
                [c.removeprefix(metric_key(prefix)) for c in m.columns], axis=1
            )
            m.index.name = "row"
            t.sections.append(Section(f"means:{prefix}", f"Mean {prefix}* over each row's runs:", m, ".3f"))
    if rating_ref:
        ref = rating_reference(split_folder(runs.iloc[0]))
        frame = pd.DataFrame({"test RMSE": ref}).rename_axis("predictor")
        t.sections.append(Section("rating reference", "Rating reference on this split (train.tsv / test.tsv):", frame))
    return t


def _seed_order(s: str) -> tuple[int, float | str]:
    try:
        return (0, float(s))
    except ValueError:
        return (1, s)


def _prefixed(runs: pd.DataFrame, prefixes: Sequence[str]) -> pd.DataFrame:
    cols = [c for c in runs.columns if any(c.startswith(metric_key(p)) for p in prefixes)]
    return runs[cols].apply(pd.to_numeric, errors="coerce")


def _pvalues(
    runs: pd.DataFrame,
    label: pd.Series,
    row_order: list[str],
    metrics: Sequence[str],
    baseline: str,
    test: str,
    per_user: dict[str, pd.DataFrame] | None,
) -> pd.DataFrame:
    """Holm-corrected p-values of every row against ``baseline`` on the ``test/…@K`` metrics; a
    ``test/sparse/…`` metric compares the sparse users only."""
    per_user = per_user or {rid: per_user_frame(uri) for rid, uri in zip(runs["run_id"], runs["artifact_uri"])}
    pvalues = pd.DataFrame(np.nan, index=row_order, columns=list(metrics))
    only: pd.Index | None = None
    for m in metrics:
        name = m.split("/", 1)[-1]
        if not m.startswith("test/") or "@" not in name:
            continue
        keep = None
        if name.startswith("sparse/"):
            name = name.removeprefix("sparse/")
            if only is None:
                if "params.eval.sparse_quantile" not in runs.columns:
                    raise TableError(f"{m}: the runs have no param eval.sparse_quantile to select the sparse users")
                q = runs["params.eval.sparse_quantile"].astype(float).unique()
                if len(q) != 1:
                    raise TableError(f"{m}: the runs use different eval.sparse_quantile values {sorted(q)}")
                only = sparse_users(split_folder(runs.iloc[0]), float(q[0]))
            keep = only
        users = {r: _mean_per_user(per_user, runs.loc[label == r, "run_id"], name) for r in row_order}
        if keep is not None:
            users = {r: u[u.index.isin(keep)] for r, u in users.items()}
        base = users[baseline]
        for r in row_order:
            if r == baseline:
                continue
            both = base.index.intersection(users[r].index)
            if len(both) != len(base) or len(both) != len(users[r]):
                raise TableError(f"rows {r!r} and {baseline!r} were evaluated on different test users")
            pvalues.loc[r, m] = paired_test(users[r].loc[both].to_numpy(), base.loc[both].to_numpy(), test)
    flat = holm(pvalues.to_numpy().ravel())
    return pd.DataFrame(flat.reshape(pvalues.shape), index=pvalues.index, columns=pvalues.columns)


def _mean_per_user(per_user: dict[str, pd.DataFrame], run_ids: pd.Series, metric: str) -> pd.Series:
    frames = []
    for rid in run_ids:
        df = per_user[rid]
        if metric not in df.columns:
            raise TableError(f"run {rid}: per-user file has no column {metric!r}")
        frames.append(df.set_index("user")[metric])
    return pd.concat(frames, axis=1).mean(axis=1)


def _contribution(t: Table, spec: Contribution) -> Section:
    if spec.metric not in t.metrics:
        raise TableError(f"contribution metric {spec.metric!r} is not a column; columns: {t.metrics}")
    for tag in (spec.rows, spec.columns):
        if tag not in t.row_tags.columns:
            raise TableError(f"contribution by {tag!r}, which is not a row key: {list(t.row_tags.columns)}")
    tags, base = t.row_tags, t.row_tags.loc[t.baseline]
    others = [k for k in tags.columns if k not in (spec.rows, spec.columns)]
    sel = [r for r in t.rows if r != t.baseline and (tags.loc[r, others] == base[others]).all()]
    across = list(spec.column_values) or list(dict.fromkeys(tags.loc[sel, spec.columns]))
    sel = [r for r in sel if tags.loc[r, spec.columns] in across]
    ref = t.mean.loc[t.baseline, spec.metric]
    frame = pd.DataFrame(
        np.nan, index=pd.Index(list(dict.fromkeys(tags.loc[sel, spec.rows])), name=spec.rows), columns=across
    )
    for r in sel:
        frame.loc[tags.loc[r, spec.rows], tags.loc[r, spec.columns]] = t.mean.loc[r, spec.metric] - ref
    among = f" among rows with {', '.join(f'{k} {base[k]}' for k in others)}" if others else ""
    caption = (
        f"Contribution: {spec.metric} minus that of the baseline {t.baseline} ({ref:.4f}), by {spec.rows} (down) "
        f"and {spec.columns} (across){among}:"
    )
    return Section("contribution", caption, frame, "+.4f")


def build_tables(runs: pd.DataFrame, split_by: str | None = None, **options: Any) -> dict[str, Table]:
    """One :func:`build` table per value of the tag ``split_by`` (in order of appearance; key ``""`` and one
    table without it). Each table has its own split check; metrics logged by no run of a part are shown as –;
    a baseline row missing from a part leaves that part untested (an error if it is missing from all)."""
    if split_by is None:
        return {"": build(runs, **options)}
    col = _column(runs, split_by)
    missing = runs[col].isna()
    if missing.any():
        log.warning(
            "%d runs have no %s tag and are left out: %s", missing.sum(), split_by, runs.loc[missing, "run_id"].tolist()
        )
        runs = runs[~missing]
    for m in options.get("metrics", ()):
        if metric_key(m) not in runs.columns:
            raise TableError(f"metric {m!r} (logged as {metric_key(m)!r}) is in none of the runs")
    parts = {str(v): runs[runs[col] == v].copy() for v in dict.fromkeys(runs[col])}
    baseline = options.get("baseline")
    rows = options.get("rows", ("model",))
    has_base = {v: baseline in set(row_labels(p, rows)) for v, p in parts.items()}
    if baseline is not None and not any(has_base.values()):
        raise TableError(f"baseline {baseline!r} is a row of no {split_by} table")
    out = {}
    for v, part in parts.items():
        for m in options.get("metrics", ()):
            if metric_key(m) not in part.columns:
                part[metric_key(m)] = np.nan
        opts = dict(options)
        if baseline is not None and not has_base[v]:
            log.warning("%s %s: no baseline row %r, no tests or contribution", split_by, v, baseline)
            opts.update(baseline=None, contribution=None)
        out[v] = build(part, **opts)
        out[v].split = (split_by, v)
        out[v].run_ids.insert(2, split_by, v)
    return out


def plots(table: Table, runs: pd.DataFrame, out: Path, prefix: str = "") -> list[Path]:
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
    fig.savefig(out / f"{prefix}bars.png", dpi=120)
    plt.close(fig)
    made.append(out / f"{prefix}bars.png")

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
        name = prefix + fam.replace("/", "_") + "_at_k.png"
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
        fig.savefig(out / f"{prefix}time_vs_accuracy.png", dpi=120)
        plt.close(fig)
        made.append(out / f"{prefix}time_vs_accuracy.png")
    return made


def provenance(runs: pd.DataFrame) -> str:
    """Date, machine, and the mmbench commits of the runs and of the code writing the page."""
    commits = sorted(set(runs["tags.git_commit"].dropna().astype(str))) if "tags.git_commit" in runs else []
    return (
        f"Made {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on {_machine()} by mmbench {_commit()}; "
        f"runs from mmbench git {', '.join(_short(c) for c in commits) or 'unknown'}."
    )


def page(title: str, body: Sequence[str], command: str, runs: pd.DataFrame, footer: Sequence[str] = ()) -> str:
    """A results page: title, body lines, the command that regenerates it, provenance, then ``footer``
    paragraphs (files, notes)."""
    lines = [f"# {title}", "", *body, "Regenerate with:", "", "```", command, "```", "", provenance(runs)]
    for f in footer:
        if f.strip():
            lines += ["", f.strip()]
    return "\n".join(lines) + "\n"


def write(
    tables: Table | Mapping[str, Table],
    runs: pd.DataFrame,
    out_dir: str | Path,
    command: str,
    make_plots: bool = True,
    markdown: str = "README.md",
    intro: str = "",
) -> Path:
    """Write ``markdown`` (the tables, their sections, ``intro`` above and the command below), ``table.tex``,
    ``table.csv``, ``runs.tsv`` (one row per run used) and plots; several tables (:func:`build_tables`) go
    into the same files, one section each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"": tables} if isinstance(tables, Table) else dict(tables)
    body = [intro.strip(), ""] if intro else []
    tex, csv, used, figs = [], [], [], []
    for key, t in tables.items():
        head = f"{t.split[0]} {t.split[1]}" if t.split else ""
        if head:
            body += [f"## {head}", ""]
            tex.append(f"% {head}")
        body.append(t.markdown())
        tex.append(t.latex())
        frame = t.frame()
        if t.split:
            frame.insert(0, t.split[0], t.split[1])
        csv.append(frame)
        used.append(t.run_ids)
        if make_plots:
            figs += plots(t, runs, out, f"{key}_" if key else "")
    (out / "table.tex").write_text("\n".join(tex))
    pd.concat(csv).to_csv(out / "table.csv", float_format="%.6g")
    used_runs = pd.concat(used, ignore_index=True)
    used_runs.to_csv(out / "runs.tsv", sep="\t", index=False, float_format="%.6g")
    files = f"Runs used: `runs.tsv` ({len(used_runs)} runs). Also: " + ", ".join(
        f"`{f}`" for f in ["table.tex", "table.csv", *(f.name for f in figs)]
    )
    used = runs[runs["run_id"].isin(used_runs["run_id"])]
    (out / markdown).write_text(page(out.name, body, command, used, [files + "."]))
    return out


class TableCallback(Callback):
    """Hydra callback for experiment configs: at the end of a multirun, tabulate that sweep's runs.

    In an experiment file::

        hydra:
          callbacks:
            table:
              _target_: mmbench.reporting.aggregation.TableCallback
              name: topn_ml100k
              metrics: [test/recall@20, test/ndcg@20]
              baseline: pop

    ``split_by``, ``costs``, ``means``, ``rating_ref`` and ``contribution`` (a mapping of
    :class:`Contribution`'s fields) work as in :func:`build_tables`.
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
        split_by: str | None = None,
        costs: Sequence[str] = (),
        means: Sequence[str] = (),
        rating_ref: bool = False,
        contribution: Mapping[str, Any] | None = None,
    ) -> None:
        self.name, self.results_dir, self.plots, self.split_by = name, results_dir, plots, split_by
        spec = OmegaConf.to_container(contribution) if isinstance(contribution, DictConfig) else contribution
        self.options: dict[str, Any] = {
            "rows": list(rows),
            "metrics": list(metrics),
            "baseline": baseline,
            "test": test,
            "alpha": alpha,
            "costs": list(costs),
            "means": list(means),
            "rating_ref": rating_ref,
            "contribution": None if spec is None else _contribution_spec(**spec),
        }

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_id = str(Path(config.hydra.sweep.dir).resolve())
        runs = load_runs(config.logger.tracking_uri, config.experiment_name, f"tags.sweep_id = '{sweep_id}'")
        tables = build_tables(runs, self.split_by, **self.options)
        command = " ".join(["mmbench", *config.hydra.overrides.task])
        if config.hydra.overrides.task and not any(o.startswith("experiment=") for o in config.hydra.overrides.task):
            command = "mmbench -m " + " ".join(config.hydra.overrides.task)
        out = write(tables, runs, Path(config.paths.work_dir) / self.results_dir / self.name, command, self.plots)
        for t in tables.values():
            print(t.markdown())
        print(f"table written to {out}")


def _contribution_spec(metric: str, rows: str, columns: str, column_values: Sequence[str] = ()) -> Contribution:
    return Contribution(metric, rows, columns, tuple(column_values))


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), Python {platform.python_version()}"


def _short(commit: str) -> str:
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def _commit() -> str:
    from mmbench.pipeline import git_commit

    return f"git {_short(git_commit())}"


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
    p.add_argument("--split-by", default=None, help="tag: one table per value (e.g. protocol)")
    p.add_argument("--metrics", nargs="+", default=["test/recall@20", "test/ndcg@20"])
    p.add_argument("--costs", nargs="+", default=[], help="columns shown as means, not ranked; 'seeds': the seeds")
    p.add_argument("--baseline", default=None, help="row to test every other row against, e.g. 'pop'")
    p.add_argument("--test", choices=["wilcoxon", "ttest"], default="wilcoxon")
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
    contribution = None if a.contribution is None else _contribution_spec(*a.contribution[:3], a.contribution[3:])
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
        print(t.markdown())
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
