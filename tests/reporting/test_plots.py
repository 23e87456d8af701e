"""Plots of a table: bars, metric@K curves (two or more K), fit time against the first metric."""

from __future__ import annotations

import pandas as pd

from mmbench.reporting.aggregation import build
from mmbench.reporting.plots import plots


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
