"""The reproduction table: mean ± std over folds beside published values, fold checks, verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.reporting.runs import TableError
from mmbench.reproduce import build, markdown, write

PUBLISHED = {
    "a": {"label": "A", "rmse": 0.90, "mae": 0.70},
    "b": {"label": "B", "rmse": 1.00, "mae": 0.80},
    "c": {"label": "C", "rmse": 1.0, "mae": 1.0},
}


def runs(folds_b=("f0", "f1")) -> pd.DataFrame:
    rows = []
    for model, fps, rmse, mae in [
        ("a", ("f0", "f1"), (0.902, 0.906), (0.701, 0.703)),
        ("b", folds_b, (1.01, 1.00), (0.80, 0.80)),
    ]:
        for fp, r, m in zip(fps, rmse, mae):
            rows.append(
                {
                    "tags.model": model,
                    "tags.split_fingerprint": fp,
                    "test/rmse": r,
                    "test/mae": m,
                    "time/fit_s": 1.0,
                    "time/eval_test_s": 2.0,
                }
            )
    return pd.DataFrame(rows)


def test_means_gaps_and_verdicts():
    t = build(runs(), PUBLISHED, tolerance=0.005).set_index("model")
    assert t.loc["a", "rmse_mean"] == pytest.approx(0.904)
    assert t.loc["a", "rmse_std"] == pytest.approx(np.std([0.902, 0.906], ddof=1))
    assert t.loc["a", "rmse_diff"] == pytest.approx(0.004) and t.loc["a", "within_tolerance"]
    assert t.loc["b", "rmse_diff"] == pytest.approx(0.005) and t.loc["b", "within_tolerance"]  # boundary counts
    assert t.loc["c", "folds"] == 0 and t.loc["c", "within_tolerance"] is None
    md = markdown(t.reset_index(), tolerance=0.005)
    assert "| A | 0.9040 ± 0.0028 | 0.900 | +0.0040 |" in md and "not run" in md
    strict = build(runs(), PUBLISHED, tolerance=0.004).set_index("model")
    assert not strict.loc["b", "within_tolerance"] and "**no**" in markdown(strict.reset_index(), tolerance=0.004)


def test_models_on_other_folds_are_refused():
    with pytest.raises(TableError, match="other folds"):
        build(runs(folds_b=("f0", "f2")), PUBLISHED)
    with pytest.raises(TableError, match="none of"):
        build(runs(), {"z": {"rmse": 1, "mae": 1}})


def test_readme_has_the_table_command_provenance_and_notes(tmp_path):
    r = runs().assign(**{"tags.git_commit": ["a" * 40, "a" * 40, "b" * 40 + "-dirty", "b" * 40 + "-dirty"]})
    t = build(r, PUBLISHED)
    out = write(
        t, tmp_path / "repro", "mmbench experiment=x", "Surprise", "A note.", ("rmse", "mae"), 0.005, "/m/2026", r
    )
    text = (out / "README.md").read_text()
    assert text.startswith(
        "# repro\n\nmmbench's mean ± sample std over the folds beside the published values (Surprise)"
    )
    assert markdown(t) in text and "```\nmmbench experiment=x\n```" in text
    assert f"runs from mmbench git {'a' * 12}, {'b' * 12}-dirty." in text and " cores), Python " in text
    assert text.endswith("Sweep: `2026`. Data: `table.csv`.\n\nA note.\n")
    assert pd.read_csv(out / "table.csv")["model"].tolist() == ["a", "b", "c"]
