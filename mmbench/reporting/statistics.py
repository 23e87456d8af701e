"""Statistics: paired tests over test users (Wilcoxon signed-rank, paired t-test), Holm-Bonferroni correction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmbench.reporting.runs import TableError, group_flags, per_user_frame

TESTS = ("wilcoxon", "ttest")


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
    from scipy import stats  # ~1 s to import: only tables that test pay it, not every run's table callback

    if test == "wilcoxon":
        if np.allclose(a, b):
            return 1.0
        return float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
    if test == "ttest":
        return float(stats.ttest_rel(a, b).pvalue)
    raise TableError(f"unknown test {test!r}: choose from {', '.join(TESTS)}")


def pvalues(
    runs: pd.DataFrame,
    label: pd.Series,
    row_order: list[str],
    metrics: Sequence[str],
    baseline: str,
    test: str,
    per_user: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Holm-corrected p-values (rows x ``metrics``) of every row against ``baseline`` on the ``test/…@K``
    metrics, on per-user values averaged over each row's runs (``per_user``: run id -> its per-user frame,
    read from the artifacts if None). A ``test/<group>/…`` metric (``sparse``, or a split's group such as
    ``truncated``) compares the users each run's per-user file flags in that group's column; rows whose users
    differ are refused."""
    per_user = per_user or {rid: per_user_frame(uri) for rid, uri in zip(runs["run_id"], runs["artifact_uri"])}
    out = pd.DataFrame(np.nan, index=row_order, columns=list(metrics))
    for m in metrics:
        name = m.split("/", 1)[-1]
        if not m.startswith("test/") or "@" not in name:
            continue
        group, _, name = name.rpartition("/")
        users = {r: _mean_per_user(per_user, runs.loc[label == r, "run_id"], name, group) for r in row_order}
        base = users[baseline]
        for r in row_order:
            if r == baseline:
                continue
            both = base.index.intersection(users[r].index)
            if len(both) != len(base) or len(both) != len(users[r]):
                what = f"{group} test users" if group else "test users"
                raise TableError(f"rows {r!r} and {baseline!r} were evaluated on different {what}")
            out.loc[r, m] = paired_test(users[r].loc[both].to_numpy(), base.loc[both].to_numpy(), test)
    flat = holm(out.to_numpy().ravel())
    return pd.DataFrame(flat.reshape(out.shape), index=out.index, columns=out.columns)


def _mean_per_user(per_user: dict[str, pd.DataFrame], run_ids: pd.Series, metric: str, group: str) -> pd.Series:
    """Per-user ``metric`` averaged over ``run_ids``; only each run's users flagged in ``group`` when given."""
    frames = []
    for rid in run_ids:
        df = per_user[rid]
        if metric not in df.columns:
            raise TableError(f"run {rid}: per-user file has no column {metric!r}")
        values = df.set_index("user")[metric]
        frames.append(values[group_flags(df, rid, group)] if group else values)
    return pd.concat(frames, axis=1).mean(axis=1)
