"""Tables from runs with known per-user metrics: means, std, p-values, Holm, refusal of mixed splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmbench.reporting.aggregation import Contribution, build, build_tables, has_row, in_row_order
from mmbench.reporting.rendering import to_latex, to_markdown
from mmbench.reporting.runs import TableError, load_runs
from mmbench.reporting.statistics import holm
from tests.helpers.reporting_store import BASE, OPTIONS, SPARSE, TEST_WARM, USERS7

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
    md = to_markdown(t)
    assert "**0.6500 ± 0.1414**" in md and "<u>0.3500 ± 0.0000</u>" in md and "†" not in md.split("\n\n")[0]
    assert "**0.5000**" in md.split("\n")[4]  # fastest fit (base, one run, no ±) is bold: lower is better
    tex = to_latex(t)
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
    assert "†" in to_markdown(t).split("\n")[2]


def test_mixed_split_fingerprints_are_refused():
    runs, per_user = runs_and_per_user()
    runs.loc[1, "tags.split_fingerprint"] = "e" * 64
    with pytest.raises(TableError, match="2 different splits"):
        build(runs, ["model"], ["test/ndcg@10"], per_user=per_user)


def test_one_cache_key_with_different_features_is_refused(caplog):
    runs, per_user = runs_and_per_user()
    key, sha = "tags.encoder.image.cache_key", "tags.encoder.image.features_sha256"
    runs[key] = ["k" * 64] * 4 + [None]  # the baseline has no image features (no tags): not checked
    runs[sha] = ["s" * 64] * 4 + [None]
    build(runs, ["model"], ["test/ndcg@10"], per_user=per_user)  # one key, one array: fine
    runs.loc[3, sha] = "t" * 64  # b's seed 1 read another extraction under the same key
    with pytest.raises(TableError, match=r"encoder.image.cache_key kkkk.*2 different feature arrays.*t{64}: 1 runs"):
        build(runs, ["model"], ["test/ndcg@10"], per_user=per_user)
    runs.loc[3, key] = "j" * 64  # another key (e.g. another thread count): allowed, but the row is named
    build(runs, ["model"], ["test/ndcg@10"], per_user=per_user)
    assert "row b: its runs read 2 different encoder.image.features_sha256" in caplog.text
    assert "row a" not in caplog.text


def test_unknown_metric_or_row_key_is_named():
    runs, per_user = runs_and_per_user()
    with pytest.raises(TableError, match="test/mrr@10"):
        build(runs, ["model"], ["test/mrr@10"], per_user=per_user)
    with pytest.raises(TableError, match="fusion"):
        build(runs, ["fusion"], ["test/ndcg@10"], per_user=per_user)


def kept(logged, protocol):
    """The runs a table uses, by row: the latest of each (row, seed)."""
    out: dict[str, dict[str, tuple]] = {}
    for p, row, seed, rid, pu, m in logged:
        if p == protocol:
            out.setdefault(row, {})[seed] = (rid, pu, m)  # later runs replace earlier ones
    return out


def ttest_p(a, b):
    from scipy.stats import t as student

    d = np.asarray(a) - np.asarray(b)
    return 2 * student.sf(abs(d.mean()) / (d.std(ddof=1) / math.sqrt(len(d))), df=len(d) - 1)


def test_tables_split_by_protocol_from_a_real_store(store, caplog):
    uri, logged = store
    with caplog.at_level("WARNING", logger="mmbench.reporting.aggregation"):
        tables = build_tables(load_runs(uri, "mm"), "protocol", **OPTIONS)
    assert list(tables) == ["warm", "cold"]
    warm, cold = tables["warm"], tables["cold"]
    rows = kept(logged, "warm")
    pop_old, pop_new = logged[0][3], logged[9][3]
    assert f"pop / - / none | seed 0: 2 runs, keeping the latest {pop_new} (dropping {pop_old})" in caplog.text
    assert list(warm.rows) == list(rows) and set(warm.run_ids["run_id"]) == {
        rid for r in rows.values() for rid, _, _ in r.values()
    }
    assert warm.split_fingerprint == "w" * 64 and cold.split_fingerprint == "c" * 64
    for row, seeds in rows.items():
        for m in ("test/recall@20", "test/ndcg@20", "test/sparse/ndcg@20"):
            v = [s[2][m] for s in seeds.values()]
            assert warm.mean.loc[row, m] == pytest.approx(np.mean(v))
            if len(v) > 1:
                assert warm.std.loc[row, m] == pytest.approx(np.std(v, ddof=1))
    assert warm.mean.loc["pop / - / none", "test/ndcg@20"] == pytest.approx(logged[9][5]["test/ndcg@20"])
    assert warm.mean.loc[BASE, "time/fit_s"] == pytest.approx((20 + 30) / 2)

    # p-values: rows' per-user values averaged over seeds against the baseline's, sparse metric on users 1, 2, 7
    def per_user(row, col, users):
        frames = [pu.set_index("user").loc[users, col] for _, pu, _ in rows[row].values()]
        return np.mean(frames, axis=0)

    raw = {}
    for row in rows:
        if row != BASE:
            for m, col, users in [
                ("test/recall@20", "recall@20", USERS7),
                ("test/ndcg@20", "ndcg@20", USERS7),
                ("test/sparse/ndcg@20", "ndcg@20", SPARSE["warm"]),
            ]:
                raw[(row, m)] = ttest_p(per_user(row, col, users), per_user(BASE, col, users))
    adjusted = dict(zip(raw, holm(np.array(list(raw.values())))))
    assert len(raw) == 18 and sum(p < 0.05 for p in adjusted.values()) >= 9  # not all saturated at 1
    for (row, m), p in adjusted.items():
        assert warm.pvalues.loc[row, m] == pytest.approx(p)
    assert np.isnan(warm.pvalues.loc[BASE]).all() and np.isnan(warm.pvalues["test/rmse"]).all()

    md = to_markdown(warm)
    cells = {tuple(c[:3]): c[3:] for c in (ln.strip("| ").split(" | ") for ln in md.split("\n\n")[0].splitlines()[2:])}
    # columns: recall, ndcg, sparse ndcg, rmse, fit s, n_params, seeds
    assert cells[("seed_cnn_lstm", "concat", "text+image")][3] == "**1.0500**"
    assert cells[("fusion_rec", "-", "none")][3:] == ["–", "25.00", "100", "0,1"]  # no rmse
    assert cells[("fusion_rec", "early", "text+image")][5:] == ["–", "0 (n=1)"]
    e = rows["fusion_rec / early / text"]
    v = [e[s][2]["test/ndcg@20"] for s in ("0", "1")]
    assert cells[("fusion_rec", "early", "text")][1].startswith(f"{np.mean(v):.4f} ± {np.std(v, ddof=1):.4f}")
    assert "Baseline of the tests: fusion_rec / - / none." in md

    contrib = warm.section("contribution").frame
    ndcg = {row: np.mean([s[2]["test/ndcg@20"] for s in seeds.values()]) for row, seeds in rows.items()}
    assert list(contrib.index) == ["early", "attention", "late"]
    assert list(contrib.columns) == ["text", "image", "text+image"]
    assert contrib.loc["early", "text"] == pytest.approx(ndcg["fusion_rec / early / text"] - ndcg[BASE])
    assert contrib.loc["early", "text+image"] == pytest.approx(ndcg["fusion_rec / early / text+image"] - ndcg[BASE])
    assert contrib.loc["attention", "text+image"] == pytest.approx(
        ndcg["fusion_rec / attention / text+image"] - ndcg[BASE]
    )
    assert contrib.loc["late", "image"] == pytest.approx(ndcg["fusion_rec / late / image"] - ndcg[BASE])
    assert contrib.isna().sum().sum() == 5  # early/image, attention/text, attention/image, late/text, late/text+image
    att = warm.section("means:fusion/attention_").frame
    assert list(att.index) == ["fusion_rec / attention / text+image"] and att.iloc[0].to_dict() == pytest.approx(
        {"id": 0.6, "text": 0.3, "image": 0.1}
    )
    weights = warm.section("means:fusion/weight_").frame
    assert weights.loc["fusion_rec / late / image"].to_dict() == pytest.approx({"id": 0.7, "image": 0.3})

    # rating reference: global training mean 39 / 13 = 3; item means 10: 4, 11: 7/3, 12: 2, 13: 4, 14: 3
    item_mean = {10: 4.0, 11: 7 / 3, 12: 2.0, 13: 4.0, 14: 3.0}
    truth = [r for _, _, r in TEST_WARM]
    ref = warm.section("rating reference").frame["test RMSE"]
    assert ref["global training mean"] == pytest.approx(math.sqrt(np.mean([(r - 3.0) ** 2 for r in truth])))
    assert ref["item training mean"] == pytest.approx(
        math.sqrt(np.mean([(r - item_mean.get(i, 3.0)) ** 2 for _, i, r in TEST_WARM]))
    )
    assert cold.section("rating reference").frame["test RMSE"].tolist() == pytest.approx([1.0, 1.0])  # item 15 unseen

    # cold: its own rows, tests (one comparison per metric, Holm over 3) and contribution
    crow = kept(logged, "cold")
    assert cold.rows == [BASE, "fusion_rec / early / text"]
    assert cold.section("contribution").frame.loc["early", "text"] == pytest.approx(
        crow["fusion_rec / early / text"]["0"][2]["test/ndcg@20"] - crow[BASE]["0"][2]["test/ndcg@20"]
    )
    a, b = crow["fusion_rec / early / text"]["0"][1], crow[BASE]["0"][1]
    raw_cold = [ttest_p(a[c], b[c]) for c in ("recall@20", "ndcg@20", "ndcg@20")]
    assert cold.pvalues.loc[
        "fusion_rec / early / text", ["test/recall@20", "test/ndcg@20", "test/sparse/ndcg@20"]
    ].tolist() == pytest.approx(holm(np.array(raw_cold)).tolist())
    # a contribution over modalities no row has (e.g. a protocol with user features only) is left out
    only_user = {**OPTIONS, "contribution": Contribution("test/ndcg@20", "fusion", "modalities", ("audio",))}
    bare = build_tables(load_runs(uri, "mm"), "protocol", **only_user)["cold"]
    with pytest.raises(KeyError, match="no section 'contribution'"):
        bare.section("contribution")


def test_split_check_applies_per_table(store):
    uri, _ = store
    runs = load_runs(uri, "mm")
    runs.loc[runs["tags.model"] == "seed_cnn_lstm", "tags.split_fingerprint"] = "x" * 64  # a warm run, other split
    with pytest.raises(TableError, match="2 different splits"):
        build_tables(runs, "protocol", **OPTIONS)
    with pytest.raises(TableError, match="2 different splits"):  # without split_by: warm and cold mixed
        build_tables(load_runs(uri, "mm"), None, **OPTIONS)


def test_baseline_missing_from_one_table_leaves_it_untested(store):
    uri, _ = store
    runs = load_runs(uri, "mm")
    runs = runs[~((runs["tags.protocol"] == "cold") & (runs["tags.fusion"] == "-"))]
    tables = build_tables(runs, "protocol", **OPTIONS)
    assert tables["cold"].pvalues is None and tables["cold"].baseline is None
    assert tables["warm"].pvalues is not None
    with pytest.raises(TableError, match="no protocol table"):
        build_tables(runs[runs["tags.fusion"] != "-"], "protocol", **OPTIONS)


def test_rows_in_a_given_order_and_row_presence():
    runs, per_user = runs_and_per_user()  # rows by first run: a, b, base
    ordered = in_row_order(runs, ["model"], ["base", "b"])  # a is not listed: after the listed rows
    assert ordered["run_id"].tolist() == ["base", "b0", "b1", "a0", "a1"]
    assert build(ordered, ["model"], ["test/ndcg@10"], per_user=per_user).rows == ["base", "b", "a"]
    assert in_row_order(runs, ["fusion"], ["x"]) is runs  # no such row key: unchanged
    assert has_row(runs, ["model"], "b") and not has_row(runs, ["model"], "c") and not has_row(runs, ["x"], "b")
