"""scripts/bench_scaling.py at tiny sizes: the synthetic data, a measured table with its plot, EASE's refusal of a
catalogue whose inverse does not fit, sampled evaluation users, and the time budget."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts import bench_scaling  # noqa: E402


def test_synthetic_data_has_distinct_pairs_and_a_disjoint_tenth_as_test():
    train, test = bench_scaling.synthetic(5_000, 100, 200, seed=3)
    keys = np.concatenate([train.users * 200 + train.items, test.users * 200 + test.items])
    assert len(keys) == 5_000 == len(np.unique(keys))
    assert 400 < len(test) < 600
    assert train.n_users == test.n_users == 100 and train.n_items == test.n_items == 200
    counts = np.bincount(train.items, minlength=200)
    assert counts[:10].mean() > 3 * counts[-100:].mean()  # Zipf-like popularity: the first items are popular
    assert bench_scaling.shape(10**7, 50, 100, 100_000) == (200_000, 100_000)
    assert bench_scaling.shape(2_000, 50, 100, 100_000) == (40, 200)  # enough items for negatives


def test_table_runs_and_plot(tmp_path):
    assert bench_scaling.main(["--sizes", "2000,4000", "--models", "pop,ease", "--out", str(tmp_path)]) == 0
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs.model) == ["pop", "pop", "ease", "ease"] and (runs.status == "ok").all()
    assert list(runs.interactions) == [2000, 4000, 2000, 4000]
    assert (runs.fit_s >= 0).all() and (runs.eval_s > 0).all()
    assert (runs.peak_rss_mb > 100).all() and (runs.model_rss_mb >= 0).all()
    assert (runs.peak_rss_mb >= runs.model_rss_mb).all()
    _, test = bench_scaling.synthetic(2000, 40, 200)
    assert runs.eval_users[0] == len(np.unique(test.users))
    assert ((runs["ndcg@10"] > 0) & (runs["ndcg@10"] <= 1)).all()
    table = (tmp_path / "table.md").read_text()
    assert "| ease | 4,000 | 80 | 200 | ok |" in table and "--models pop,ease" in table
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


def test_sampled_evaluation_users_and_their_scaled_seconds(tmp_path):
    _, test = bench_scaling.synthetic(4000, 80, 200)
    sample = bench_scaling.sample_users(test, 30)
    kept = np.unique(sample.users)
    assert len(kept) == 30 and np.isin(kept, test.users).all()
    assert len(sample) == np.isin(test.users, kept).sum()  # every test event of a sampled user, no other
    assert bench_scaling.sample_users(test, 0) is test and bench_scaling.sample_users(test, 10**6) is test
    assert bench_scaling.main(["--sizes", "4000", "--models", "pop", "--eval-users", "30", "--out", str(tmp_path)]) == 0
    run = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert run.eval_users == 30
    assert run.eval_s_all_users == pytest.approx(run.eval_s * len(np.unique(test.users)) / 30)


def test_ease_refusal_is_a_row_with_the_memory_needed(monkeypatch, capsys):
    monkeypatch.setattr("mmbench.models.topn.ease.available_memory", lambda: 1024)
    bench_scaling.child("ease", [(2000, 40, 200)])
    line = capsys.readouterr().out.strip()
    res = json.loads(line.removeprefix("SCALING "))
    assert res["interactions"] == 2000 and res["status"] == "refused"
    assert "EASE on 200 items needs about" in res["note"] and "available on this machine" in res["note"]


def test_models_past_the_budget_are_skipped_and_listed(tmp_path):
    bench_scaling.main(["--sizes", "2000", "--models", "pop,random", "--budget-s", "0", "--out", str(tmp_path)])
    table = (tmp_path / "table.md").read_text()
    assert "Skipped (time budget):" in table and "- pop: every size" in table and "- random: every size" in table
    assert not (tmp_path / "scaling.png").exists()


def test_overrides_reach_every_model_process(tmp_path):
    args = ["--sizes", "2000", "--models", "bpr", "--out", str(tmp_path), "model.sparse=true"]
    assert bench_scaling.main([*args, "model.optimizer._target_=torch.optim.SGD"]) == 0
    run = pd.read_csv(tmp_path / "runs.csv").iloc[0]
    assert run.status == "failed" and "model.sparse=true trains with torch.optim.SparseAdam" in run.note
    assert bench_scaling.main(args) == 0
    assert pd.read_csv(tmp_path / "runs.csv").iloc[0].status == "ok"
    assert "model.sparse=true" in (tmp_path / "table.md").read_text()
