"""Tables from runs with known per-user metrics: means, std, p-values, Holm, refusal of mixed splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmbench.tables import TableError, build, holm

USERS = [str(u) for u in range(6)]


def runs_and_per_user():
    # model a: 2 seeds; model b: 2 seeds; base: 1 seed. Per-user ndcg@10 values chosen by hand.
    per_user_values = {
        "a0": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        "a1": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8],  # a averaged per user: 0.4 .. 0.9
        "b0": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "b1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        "base": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    }
    model = {"a0": "a", "a1": "a", "b0": "b", "b1": "b", "base": "base"}
    runs = pd.DataFrame(
        {
            "run_id": list(per_user_values),
            "artifact_uri": ["unused"] * 5,
            "tags.model": [model[r] for r in per_user_values],
            "tags.split_fingerprint": ["f" * 64] * 5,
            "test/ndcg_at_10": [np.mean(v) for v in per_user_values.values()],
            "time/fit_s": [1.0, 3.0, 2.0, 2.0, 0.5],
        }
    )
    per_user = {r: pd.DataFrame({"user": USERS, "ndcg@10": v}) for r, v in per_user_values.items()}
    return runs, per_user


def test_means_std_and_wilcoxon_with_holm_by_hand():
    runs, per_user = runs_and_per_user()
    t = build(runs, ["model"], ["test/ndcg@10", "time/fit_s"], baseline="base", per_user=per_user)
    assert t.rows == ["a", "b", "base"]
    assert t.mean.loc["a", "test/ndcg@10"] == pytest.approx(0.65)  # (0.75 + 0.55) / 2
    assert t.std.loc["a", "test/ndcg@10"] == pytest.approx(math.sqrt(2 * 0.1**2))  # sample std of 0.75, 0.55
    assert t.std.loc["b", "test/ndcg@10"] == pytest.approx(0.0)
    assert t.mean.loc["a", "time/fit_s"] == pytest.approx(2.0)
    # a and b beat base on all 6 users: exact two-sided Wilcoxon p = 2 / 2**6; Holm over 2 tests doubles the
    # smallest and keeps the max for the next: both 0.0625 -> not significant at 0.05
    assert t.pvalues.loc["a", "test/ndcg@10"] == pytest.approx(2 * 2 / 2**6)
    assert t.pvalues.loc["b", "test/ndcg@10"] == pytest.approx(2 * 2 / 2**6)
    assert np.isnan(t.pvalues.loc["base", "test/ndcg@10"]) and np.isnan(t.pvalues.loc["a", "time/fit_s"])
    md = t.markdown()
    assert "**0.6500 ± 0.1414**" in md and "<u>0.3500 ± 0.0000</u>" in md and "†" not in md.split("\n\n")[0]
    assert "**0.5000**" in md.split("\n")[4]  # fastest fit (base, one run, no ±) is bold: lower is better
    tex = t.latex()
    assert r"\toprule" in tex and r"\textbf{0.6500 $\pm$ 0.1414}" in tex


def test_paired_t_test_by_hand():
    runs, per_user = runs_and_per_user()
    t = build(runs, ["model"], ["test/ndcg@10"], baseline="base", test="ttest", alpha=0.05, per_user=per_user)
    d = np.array([0.4, 0.5, 0.6, 0.7, 0.8, 0.9])  # a (averaged over seeds) minus base
    tstat = d.mean() / (d.std(ddof=1) / math.sqrt(6))
    from scipy.stats import t as student

    p_a = 2 * student.sf(tstat, df=5)
    d_b = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    p_b = 2 * student.sf(d_b.mean() / (d_b.std(ddof=1) / math.sqrt(6)), df=5)
    lo, hi = sorted([p_a, p_b])
    expected = {p_a: 2 * lo if p_a == lo else max(2 * lo, hi), p_b: 2 * lo if p_b == lo else max(2 * lo, hi)}
    assert t.pvalues.loc["a", "test/ndcg@10"] == pytest.approx(expected[p_a])
    assert t.pvalues.loc["b", "test/ndcg@10"] == pytest.approx(expected[p_b])
    assert t.significant("a", "test/ndcg@10")
    assert "†" in t.markdown().split("\n")[2]


def test_holm_adjustment():
    np.testing.assert_allclose(holm(np.array([0.01, 0.04, np.nan, 0.03])), [0.03, 0.06, np.nan, 0.06])


def test_mixed_split_fingerprints_are_refused():
    runs, per_user = runs_and_per_user()
    runs.loc[1, "tags.split_fingerprint"] = "e" * 64
    with pytest.raises(TableError, match="2 different splits"):
        build(runs, ["model"], ["test/ndcg@10"], per_user=per_user)


def test_unknown_metric_or_row_key_is_named():
    runs, per_user = runs_and_per_user()
    with pytest.raises(TableError, match="test/mrr@10"):
        build(runs, ["model"], ["test/mrr@10"], per_user=per_user)
    with pytest.raises(TableError, match="fusion"):
        build(runs, ["fusion"], ["test/ndcg@10"], per_user=per_user)
