"""Paired tests and Holm; sparse-user comparisons read the per-user files' ``sparse`` column."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student

from mmbench.reporting.aggregation import build
from mmbench.reporting.runs import TableError
from mmbench.reporting.statistics import holm, paired_test

USERS = [str(u) for u in range(6)]
A = [0.5, 0.9, 0.4, 0.3, 0.8, 0.2]  # per-user ndcg@10 of row a; the baseline is 0 everywhere


def runs_and_per_user(flags_a, flags_base, with_column=True):
    """Rows a and base, one run each, without any split folder: sparse users can only come from the column."""
    runs = pd.DataFrame(
        {
            "run_id": ["a0", "base0"],
            "artifact_uri": ["unused", "unused"],
            "tags.model": ["a", "base"],
            "tags.split_fingerprint": ["f" * 64] * 2,
            "test/ndcg_at_10": [np.mean(A), 0.0],
            "test/sparse/ndcg_at_10": [0.0, 0.0],
        }
    )
    per_user = {}
    for rid, values, flags in (("a0", A, flags_a), ("base0", [0.0] * 6, flags_base)):
        frame = pd.DataFrame({"user": USERS, "ndcg@10": values})
        if with_column:
            frame["sparse"] = flags
        per_user[rid] = frame
    return runs, per_user


def test_holm_adjustment():
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, np.nan, 0.03])), [0.03, 0.06, np.nan, 0.06])


def test_identical_values_are_not_different():
    assert paired_test(np.array([0.1, 0.2]), np.array([0.1, 0.2]), "wilcoxon") == 1.0
    with pytest.raises(TableError, match="unknown test 'z'"):
        paired_test(np.array([0.1, 0.2]), np.array([0.0, 0.2]), "z")


def test_sparse_metric_compares_the_users_the_evaluator_flagged():
    # flagged: users 1, 3, 5 (not the first or lowest ones): the t-test runs on a's values 0.9, 0.3, 0.2 against 0
    flags = [0, 1, 0, 1, 0, 1]
    runs, per_user = runs_and_per_user(flags, flags)
    t = build(runs, ["model"], ["test/ndcg@10", "test/sparse/ndcg@10"], "base", "ttest", per_user=per_user)
    d = np.array([0.9, 0.3, 0.2])
    p_sparse = 2 * student.sf(d.mean() / (d.std(ddof=1) / math.sqrt(3)), df=2)
    d_all = np.array(A)
    p_all = 2 * student.sf(d_all.mean() / (d_all.std(ddof=1) / math.sqrt(6)), df=5)
    lo, hi = sorted([p_sparse, p_all])
    holm_of = {lo: 2 * lo, hi: max(2 * lo, hi)}
    assert t.pvalues.loc["a", "test/sparse/ndcg@10"] == pytest.approx(min(holm_of[p_sparse], 1.0))
    assert t.pvalues.loc["a", "test/ndcg@10"] == pytest.approx(min(holm_of[p_all], 1.0))


def test_rows_with_different_sparse_users_are_refused():
    runs, per_user = runs_and_per_user([0, 1, 0, 1, 0, 1], [1, 1, 0, 1, 0, 1])
    with pytest.raises(TableError, match="different sparse test users"):
        build(runs, ["model"], ["test/sparse/ndcg@10"], "base", "ttest", per_user=per_user)


def test_a_per_user_file_without_the_sparse_column_names_the_run_and_column():
    runs, per_user = runs_and_per_user(None, None, with_column=False)
    with pytest.raises(TableError, match=r"run a0: metrics/per_user_test.tsv has no 'sparse' column"):
        build(runs, ["model"], ["test/sparse/ndcg@10"], "base", per_user=per_user)
    # metrics over all users do not need it
    t = build(runs, ["model"], ["test/ndcg@10"], "base", per_user=per_user)
    assert np.isfinite(t.pvalues.loc["a", "test/ndcg@10"])


def test_a_split_group_metric_compares_that_groups_users():
    """``test/truncated/…`` (split=sparse_history) is tested on the users the per-user files flag ``truncated``."""
    runs, per_user = runs_and_per_user([0] * 6, [0] * 6)
    runs["test/truncated/ndcg_at_10"] = [0.0, 0.0]
    for frame in per_user.values():
        frame["truncated"] = [1, 1, 0, 0, 1, 0]  # users 0, 1, 4: a's values 0.5, 0.9, 0.8 against 0
    t = build(runs, ["model"], ["test/truncated/ndcg@10"], "base", "ttest", per_user=per_user)
    d = np.array([0.5, 0.9, 0.8])
    assert t.pvalues.loc["a", "test/truncated/ndcg@10"] == pytest.approx(
        2 * student.sf(d.mean() / (d.std(ddof=1) / math.sqrt(3)), df=2)
    )
    del per_user["a0"]["truncated"]
    with pytest.raises(TableError, match=r"run a0: .* no 'truncated' column"):
        build(runs, ["model"], ["test/truncated/ndcg@10"], "base", "ttest", per_user=per_user)
