"""``mmbench-table``: the split tables, runs.tsv and the regenerating command from a real store."""

from __future__ import annotations

import pandas as pd
import pytest

from mmbench.reporting.cli import main
from tests.helpers.reporting_store import BASE


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


def test_cli_costs_compute_adds_the_compute_columns(store, tmp_path):
    uri, _ = store
    argv = ["c", "--experiment", "mm", "--tracking-uri", uri, "--rows", "model", "fusion", "modalities"]
    argv += ["--filter", "tags.protocol = 'warm'", "--metrics", "test/ndcg@20", "--costs", "compute", "seeds"]
    argv += ["--no-plots", "--results-dir", str(tmp_path)]
    assert main(argv) == 0
    md = (tmp_path / "c" / "README.md").read_text()
    head = "| model | fusion | modalities | test/ndcg@20 | model/n_params | cost/train_flops | cost/score_1k_flops | "
    assert head + "time/fit_s | memory/fit_peak_rss_mb | energy/fit_kwh | seeds |" in md
    assert "| fusion_rec | early | text |" in md and "| 150 | – | – |" in md  # n_params logged, no FLOPs
