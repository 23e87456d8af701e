"""Aggregation: runs -> :class:`Table` (rows by tags, mean ± std over seeds, the latest run per row and seed,
one split per table, tests against a baseline row) and its sections (contribution, diagnostic means, rating
reference). Rendering is :mod:`mmbench.reporting.rendering`.

Rows group runs by tags or params (e.g. ``model``, or ``model fusion modalities``); ``split_by`` (e.g.
``protocol``) cuts the runs into one table per value of a tag. Cells are mean ± sample std over the runs of a
row (seeds; of several runs of one row and seed only the latest counts); cost columns (times, parameter counts,
the seeds) are means, not ranked. Against a named baseline row, a paired test over users on the per-user test
metrics of the runs' ``metrics/per_user_test.tsv`` artifacts (:mod:`mmbench.reporting.statistics`) marks
significant differences. Runs of one table on different split fingerprints are refused, and so are runs whose
frozen features have one cache key but different values (two extractions of the same configuration).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.evaluation.metrics import metric_for, metric_key
from mmbench.reporting.runs import TableError, read_split_part, split_folder
from mmbench.reporting.statistics import pvalues as paired_pvalues

log = logging.getLogger(__name__)

SEEDS = "seeds"  # the cost column listing each row's seeds (tag ``seed``)
COMPUTE = "compute"  # the cost columns of every run's compute cost (conf costs; mmbench/training/costs.py)
COMPUTE_COLUMNS = (
    "model/n_params",
    "cost/train_flops",
    "cost/score_1k_flops",
    "time/fit_s",
    "memory/fit_peak_rss_mb",
    "energy/fit_kwh",
)


def cost_columns(costs: Sequence[str]) -> list[str]:
    """``costs`` with ``compute`` replaced by :data:`COMPUTE_COLUMNS` (each column once, in order)."""
    out: list[str] = []
    for c in costs:
        out += COMPUTE_COLUMNS if c == COMPUTE else [c]
    return list(dict.fromkeys(out))


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


def has_row(runs: pd.DataFrame, rows: Sequence[str], label: str) -> bool:
    """Whether some run has the row name ``label``; False when a row key is missing from all runs."""
    try:
        return bool((row_labels(runs, rows) == label).any())
    except TableError:
        return False


def in_row_order(runs: pd.DataFrame, rows: Sequence[str], order: Sequence[str]) -> pd.DataFrame:
    """``runs`` stably reordered so that their rows (tables list rows by first run) come in ``order``; rows
    not in ``order`` follow, and runs without a row key stay as they are."""
    try:
        label = row_labels(runs, rows)
    except TableError:
        return runs
    position = {r: n for n, r in enumerate(order)}
    return runs.iloc[np.argsort([position.get(r, len(position)) for r in label], kind="stable")]


def check_single_split(runs: pd.DataFrame) -> str:
    """The one split fingerprint shared by all runs; runs on several splits raise :class:`TableError`."""
    if "tags.split_fingerprint" not in runs.columns or runs["tags.split_fingerprint"].isna().any():
        raise TableError("some runs have no split_fingerprint tag: cannot tell whether they are comparable")
    fps = runs.groupby("tags.split_fingerprint")["run_id"].apply(list)
    if len(fps) > 1:
        detail = "; ".join(f"{fp[:16]}: {len(ids)} runs (e.g. {ids[0]})" for fp, ids in fps.items())
        raise TableError(f"runs use {len(fps)} different splits, refusing to compare them in one table: {detail}")
    return str(fps.index[0])


def check_features(runs: pd.DataFrame, label: pd.Series) -> None:
    """Refuse runs that read different frozen features under one cache key (tags ``<encoder>.<modality>.cache_key``
    and ``.features_sha256``, e.g. a cache filled by another code version); warn where one row's runs read
    different features (several encoder configurations or executions averaged in one row). Runs without the
    tags (older stores) are not checked."""
    for key_col in [c for c in runs.columns if c.startswith("tags.") and c.endswith(".cache_key")]:
        sha_col = key_col.removesuffix("cache_key") + "features_sha256"
        if sha_col not in runs.columns:
            continue
        have = runs[[key_col, sha_col, "run_id"]].dropna()
        for key, group in have.groupby(key_col):
            shas = group.groupby(sha_col)["run_id"].apply(list)
            if len(shas) > 1:
                detail = "; ".join(f"{sha}: {len(ids)} runs (e.g. {ids[0]})" for sha, ids in shas.items())
                tag = sha_col.removeprefix("tags.")
                raise TableError(
                    f"{key_col.removeprefix('tags.')} {key[:16]}: the runs read {len(shas)} different feature "
                    f"arrays under one cache key (another machine or an edited cache), refusing to compare them in "
                    f"one table: {detail}; keep one with --filter \"tags.`{tag}` = '<digest>'\" or re-run the others"
                )
        rows = have.groupby(label.loc[have.index])[sha_col].nunique()
        for row in rows[rows > 1].index:
            log.warning("row %s: its runs read %d different %s", row, rows[row], sha_col.removeprefix("tags."))


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


def rating_reference(folder: Path) -> dict[str, float]:
    """Test RMSE of two trivial rating predictors on a saved split: the global training mean, and each item's
    training mean (the global mean for items without training ratings)."""
    train, test = read_split_part(folder, "train"), read_split_part(folder, "test")
    mu = train["rating"].mean()
    pred_item = test["item"].map(train.groupby("item")["rating"].mean()).fillna(mu).to_numpy()
    r = test["rating"].to_numpy(float)
    return {
        "global training mean": float(np.sqrt(np.mean((r - mu) ** 2))),
        "item training mean": float(np.sqrt(np.mean((r - pred_item) ** 2))),
    }


@dataclass(frozen=True)
class Contribution:
    """Section: ``metric`` of each row minus the baseline row's, one row tag down (``rows``) and one across
    (``columns``; ``column_values`` picks and orders them), over the rows that equal the baseline on every
    other row tag (e.g. fusion x modalities of ``fusion_rec`` against ``fusion_rec`` without modalities)."""

    metric: str
    rows: str
    columns: str
    column_values: tuple[str, ...] = ()


def contribution_spec(metric: str, rows: str, columns: str, column_values: Sequence[str] = ()) -> Contribution:
    """A :class:`Contribution` from plain values (a config mapping or the command line)."""
    return Contribution(metric, rows, columns, tuple(column_values))


@dataclass
class Section:
    """A small table printed under the main one: a caption and a frame (NaN printed as –)."""

    name: str
    caption: str
    frame: pd.DataFrame
    fmt: str = ".4f"


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
    ranked or tested (missing ones as –), ``seeds`` for the row's seeds, ``compute`` for :data:`COMPUTE_COLUMNS`.
    Sections: ``contribution`` (needs the baseline), ``means`` (metric prefixes such as ``fusion/attention_``),
    ``rating_ref`` (from the split files).
    """
    for m in metrics:
        if metric_key(m) not in runs.columns:
            raise TableError(f"metric {m!r} (logged as {metric_key(m)!r}) is in none of the runs")
    costs = cost_columns(costs)
    cols = [_column(runs, k) for k in rows]
    label = row_labels(runs, rows)
    row_order = list(dict.fromkeys(label.tolist()))  # by each row's first run, re-runs included
    runs = latest_per_seed(runs, label)
    label = label.loc[runs.index]
    fp = check_single_split(runs)
    check_features(runs, label)
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
        pvalues = paired_pvalues(runs, label, row_order, metrics, baseline, test, per_user)
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
