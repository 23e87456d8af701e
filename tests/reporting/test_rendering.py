"""Rendering: Markdown / LaTeX / CSV of a table with hand-made values, and the page writer's files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student

from mmbench.reporting.aggregation import Section, build
from mmbench.reporting.rendering import section_markdown, to_frame, to_latex, to_markdown, write

USERS = ["u1", "u2", "u3"]


def table():
    runs = pd.DataFrame(
        {
            "run_id": ["x0", "x1", "y0"],
            "artifact_uri": ["unused"] * 3,
            "start_time": [1, 2, 3],
            "tags.model": ["x", "x", "y_1"],
            "tags.seed": ["0", "1", "0"],
            "tags.split_fingerprint": ["f" * 64] * 3,
            "tags.git_commit": ["c" * 40] * 3,
            "test/ndcg_at_10": [0.2, 0.4, 0.1],
            "time/fit_s": [100.0, 300.0, 1.5],
        }
    )
    values = {"x0": [0.1, 0.2, 0.3], "x1": [0.3, 0.4, 0.5], "y0": [0.15, 0.05, 0.1]}  # means 0.2, 0.4, 0.1
    per_user = {r: pd.DataFrame({"user": USERS, "ndcg@10": v}) for r, v in values.items()}
    t = build(runs, ["model"], ["test/ndcg@10"], "y_1", "ttest", per_user=per_user, costs=["time/fit_s", "seeds"])
    return t, runs


def test_markdown_latex_and_frame_cells():
    t, _ = table()
    md = to_markdown(t).splitlines()
    assert md[0] == "| model | test/ndcg@10 | time/fit_s | seeds |"
    # x: mean 0.3, sample std of (0.2, 0.4) = 0.1414, best (bold); y_1 one run: no ±, second (underlined)
    assert md[2] == "| x | **0.3000 ± 0.1414** | 200 | 0,1 |"
    assert md[3] == "| y_1 | <u>0.1000</u> | 1.50 | 0 (n=1) |"
    tex = to_latex(t)
    assert r"y\_1 & \underline{0.1000} & 1.50 & 0 (n=1) \\" in tex and r"\textbf{0.3000 $\pm$ 0.1414}" in tex
    frame = to_frame(t)
    assert frame.loc["x", "test/ndcg@10 mean"] == pytest.approx(0.3) and frame.loc["x", "seeds"] == "0,1"
    assert frame.loc["x", "time/fit_s mean"] == pytest.approx(200.0) and frame.loc["x", "n_runs"] == 2
    assert np.isnan(frame.loc["y_1", "test/ndcg@10 p_holm"])
    d = np.array([0.2, 0.3, 0.4]) - np.array([0.15, 0.05, 0.1])  # x per user (mean of seeds) minus y_1
    p = 2 * student.sf(d.mean() / (d.std(ddof=1) / np.sqrt(3)), df=2)  # about 0.12: no dagger above
    assert frame.loc["x", "test/ndcg@10 p_holm"] == pytest.approx(p) and p > 0.05


def test_section_prints_nan_as_a_dash():
    f = pd.DataFrame({"a": [0.5, np.nan]}, index=pd.Index(["r1", "r2"], name="row"))
    assert section_markdown(Section("s", "Caption:", f, ".2f")).splitlines() == [
        "Caption:",
        "",
        "| row | a |",
        "|---|---|",
        "| r1 | 0.50 |",
        "| r2 | – |",
    ]


def test_write_puts_tables_command_and_runs_into_one_folder(tmp_path):
    t, runs = table()
    out = write({"warm": t}, runs, tmp_path / "page", "mmbench-table page --no-plots", make_plots=False, intro="Hi.")
    text = (out / "README.md").read_text()
    assert text.startswith("# page\n\nHi.\n") and "```\nmmbench-table page --no-plots\n```" in text
    assert "runs from mmbench git cccccccccccc." in text and "Runs used: `runs.tsv` (3 runs)" in text
    used = pd.read_csv(out / "runs.tsv", sep="\t", dtype=str)
    assert used["run_id"].tolist() == ["x0", "x1", "y0"]
    assert pd.read_csv(out / "table.csv", index_col="row").loc["x", "n_runs"] == 2
    assert (out / "table.tex").read_text().startswith(r"\begin{tabular}{lrrr}")


def test_compute_cost_columns_appear_with_readable_numbers():
    runs = pd.DataFrame(
        {
            "run_id": ["b", "e"],
            "tags.model": ["bpr", "ease"],
            "tags.split_fingerprint": ["f" * 64] * 2,
            "test/ndcg_at_20": [0.3, 0.4],
            "model/n_params": [170_000.0, np.nan],
            "cost/train_flops": [1.234e12, np.nan],  # ease: not a torch model, no FLOPs logged
            "cost/score_1k_flops": [5.12e7, np.nan],
            "time/fit_s": [12.5, 3.0],
            "memory/fit_peak_rss_mb": [1024.0, 2048.0],
            "energy/fit_kwh": [2.5e-5, 1.25e-6],
        }
    )
    t = build(runs, ["model"], ["test/ndcg@20"], costs=["compute", "time/fit_s"])
    cols = ["model/n_params", "cost/train_flops", "cost/score_1k_flops", "time/fit_s", "memory/fit_peak_rss_mb"]
    assert t.costs == [*cols, "energy/fit_kwh"]  # 'compute' expanded, time/fit_s once
    md = to_markdown(t)
    assert "| model | test/ndcg@20 | " + " | ".join(cols) + " | energy/fit_kwh |" in md
    assert "| bpr | <u>0.3000</u> | 170,000 | 1.23e+12 | 5.12e+07 | 12.50 | 1,024 | 2.5e-05 |" in md
    assert "| ease | **0.4000** | – | – | – | 3.00 | 2,048 | 1.25e-06 |" in md
