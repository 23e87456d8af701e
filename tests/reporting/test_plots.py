"""Plots of a table: bars, metric@K curves (two or more K), fit time against the first metric."""

from __future__ import annotations

import pandas as pd

from mmbench.reporting.aggregation import build
from mmbench.reporting.plots import cost_plots, plots


def test_plot_files(tmp_path):
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "tags.model": ["m1", "m2"],
            "tags.split_fingerprint": ["f" * 64] * 2,
            "test/ndcg_at_10": [0.1, 0.2],
            "test/ndcg_at_20": [0.15, 0.25],
            "time/fit_s": [1.0, 2.0],
        }
    )
    t = build(runs, ["model"], ["test/ndcg@10", "test/ndcg@20"])
    made = plots(t, runs, tmp_path, "p_")
    assert [f.name for f in made] == ["p_bars.png", "p_test_ndcg_at_k.png", "p_time_vs_accuracy.png"]
    assert all(f.stat().st_size > 1000 and f.read_bytes()[:4] == b"\x89PNG" for f in made)
    only = plots(
        build(runs.drop(columns="time/fit_s"), ["model"], ["test/ndcg@10"]),
        runs.drop(columns="time/fit_s"),
        tmp_path,
        "q_",
    )
    assert [f.name for f in only] == ["q_bars.png", "q_test_ndcg_at_k.png"]


def test_accuracy_per_cost_plots_one_point_per_row(tmp_path):
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "tags.model": ["bpr", "freedom", "ease"],
            "tags.split_fingerprint": ["f" * 64] * 3,
            "test/ndcg_at_20": [0.3, 0.35, 0.4],
            "cost/train_flops": [1e10, 1e12, float("nan")],  # ease: no FLOPs
        }
    )
    t = build(runs, ["model"], ["test/ndcg@20"])
    made = cost_plots(t, runs, tmp_path, "warm_")
    assert [f.name for f in made] == ["warm_flops_vs_accuracy.png"]  # no energy column: no energy plot
    assert made[0].read_bytes()[:4] == b"\x89PNG"
    assert [f.name for f in plots(t, runs, tmp_path)][-1] == "flops_vs_accuracy.png"
    assert cost_plots(t, runs.assign(**{"cost/train_flops": float("nan")}), tmp_path) == []
