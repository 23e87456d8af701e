"""Tables from runs with known per-user metrics: means, std, p-values, Holm, refusal of mixed splits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmbench.reporting.aggregation import Contribution, TableError, build, build_tables, holm, load_runs, main

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


# A real MLflow store: two protocols on their own splits, rows by model / fusion / modalities, seeds, a re-run.
USERS7 = [str(u) for u in range(1, 8)]
TRAIN = [(1, 10, 4), (2, 11, 2), (3, 10, 5), (3, 12, 3), (4, 11, 4), (4, 12, 1), (4, 13, 3)]
TRAIN += [(5, 10, 3), (5, 13, 5), (5, 14, 2), (6, 11, 1), (6, 12, 2), (6, 14, 4)]
VAL = [(3, 14, 4)]
TEST_WARM = [(1, 11, 3), (2, 12, 5), (3, 13, 2), (4, 10, 4), (5, 99, 1), (6, 13, 3), (7, 10, 5)]
TEST_COLD = [(1, 15, 4), (2, 15, 2)]
# training events: users 1, 2: 1; 3: 2; 4, 5, 6: 3; 7: 0. The 0.25 quantile of (0, 1, 1, 2, 3, 3, 3) is 1.
SPARSE = {"warm": ["1", "2", "7"], "cold": ["1", "2"]}  # cold: user 7 is in no part; quantile of (1,1,2,3,3,3) 1.25
BASE = "fusion_rec / - / none"
# (protocol, model, fusion, modalities, seed, extra metrics)
RUNS = [
    ("warm", "pop", "-", "none", "0", {}),  # an earlier run of pop, seed 0: replaced by the re-run below
    ("warm", "fusion_rec", "-", "none", "0", {"model/n_params": 100.0}),
    ("warm", "fusion_rec", "-", "none", "1", {"model/n_params": 100.0}),
    ("warm", "fusion_rec", "early", "text", "0", {"model/n_params": 150.0}),
    ("warm", "fusion_rec", "early", "text", "1", {"model/n_params": 150.0}),
    ("warm", "fusion_rec", "early", "text+image", "0", {}),
    (
        "warm",
        "fusion_rec",
        "attention",
        "text+image",
        "0",
        dict(zip(["fusion/attention_id", "fusion/attention_text", "fusion/attention_image"], [0.6, 0.3, 0.1])),
    ),
    ("warm", "fusion_rec", "late", "image", "0", {"fusion/weight_id": 0.7, "fusion/weight_image": 0.3}),
    ("warm", "seed_cnn_lstm", "concat", "text+image", "0", {"test/rmse": 1.05}),
    ("warm", "pop", "-", "none", "0", {}),
    ("cold", "fusion_rec", "-", "none", "0", {}),
    ("cold", "fusion_rec", "early", "text", "0", {}),
]


def write_split(folder, test_rows):
    folder.mkdir(parents=True)
    for part, rows in (("train", TRAIN), ("val", VAL), ("test", test_rows)):
        pd.DataFrame(rows, columns=["user", "item", "rating"]).assign(timestamp=0).to_csv(
            folder / f"{part}.tsv", sep="\t", index=False
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The store's URI and, per run, (protocol, row, seed, run id, per-user frame, logged metrics)."""
    from tests.conftest import log_mlflow_run

    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp}/mlflow.db"
    write_split(tmp / "warm", TEST_WARM)
    write_split(tmp / "cold", TEST_COLD)
    rng = np.random.default_rng(0)
    logged = []
    for i, (protocol, model, fusion, mods, seed, extra) in enumerate(RUNS):
        users = USERS7 if protocol == "warm" else ["1", "2"]
        # per-user values: a user level, a row effect (clear differences, small p-values) and noise
        effect = 0.05 * list(dict.fromkeys(r[1:4] for r in RUNS)).index((model, fusion, mods))
        level = np.linspace(0.1, 0.4, len(users))
        pu = pd.DataFrame(
            {
                "user": users,
                "recall@20": level + effect + rng.normal(0, 0.02, len(users)),
                "ndcg@20": level[::-1] + effect + rng.normal(0, 0.02, len(users)),
            }
        )
        sparse = pu[pu.user.isin(SPARSE[protocol])]
        metrics = {
            "test/recall@20": pu["recall@20"].mean(),
            "test/ndcg@20": pu["ndcg@20"].mean(),
            "test/sparse/ndcg@20": sparse["ndcg@20"].mean(),
            "time/fit_s": 10.0 * (i + 1),
            "time/eval_test_s": 0.5,
            **extra,
        }
        tags = {"protocol": protocol, "model": model, "fusion": fusion, "modalities": mods, "seed": seed}
        tags |= {"split_fingerprint": protocol[0] * 64, "split_dir": str(tmp / protocol), "git_commit": "a" * 40}
        params = {"eval.sparse_quantile": "0.25"}
        rid = log_mlflow_run(uri, "mm", tags, metrics, 1_000 + i, pu, params)
        logged.append((protocol, f"{model} / {fusion} / {mods}", seed, rid, pu, metrics))
    return uri, logged


OPTIONS = dict(
    rows=["model", "fusion", "modalities"],
    metrics=["test/recall@20", "test/ndcg@20", "test/sparse/ndcg@20", "test/rmse"],
    baseline=BASE,
    test="ttest",
    costs=["time/fit_s", "model/n_params", "seeds"],
    contribution=Contribution("test/ndcg@20", "fusion", "modalities", ("text", "image", "text+image")),
    means=["fusion/attention_", "fusion/weight_"],
    rating_ref=True,
)


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

    md = warm.markdown()
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


def test_cli_writes_the_split_tables_and_runs(store, tmp_path):
    uri, logged = store
    argv = ["mm", "--experiment", "mm", "--tracking-uri", uri, "--rows", "model", "fusion", "modalities"]
    argv += ["--split-by", "protocol", "--metrics", "test/ndcg@20", "test/rmse", "--costs", "seeds"]
    argv += ["--baseline", BASE, "--contribution", "test/ndcg@20", "fusion", "modalities", "text", "image"]
    argv += ["--means", "fusion/attention_", "--rating-reference", "--markdown", "tables.md", "--no-plots"]
    argv += ["--results-dir", str(tmp_path)]
    assert main(argv) == 0
    md = (tmp_path / "mm" / "tables.md").read_text()
    assert "## protocol warm" in md and "## protocol cold" in md
    assert "| fusion | text | image |" in md and "'fusion_rec / - / none'" in md  # the command, quoted
    runs = pd.read_csv(tmp_path / "mm" / "runs.tsv", sep="\t", dtype=str)
    assert len(runs) == len(logged) - 1  # the replaced pop run is not used
    assert list(runs.columns[:8]) == [
        "row",
        "run_id",
        "protocol",
        "model",
        "fusion",
        "modalities",
        "seed",
        "split_fingerprint",
    ]
    first = runs.set_index("run_id").loc[logged[1][3]]
    assert float(first["test/ndcg@20"]) == pytest.approx(logged[1][5]["test/ndcg@20"], rel=1e-5)
    bad = argv[:]
    bad[bad.index("--baseline") + 1] = "nope"
    assert main(bad) == 2
