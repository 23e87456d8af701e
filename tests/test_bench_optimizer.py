"""scripts/bench_optimizer.py: single- and multi-tensor Adam give the same metrics; a difference fails the run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts import bench_optimizer  # noqa: E402

ARGS = ["--experiment", "quick", "--models", "bpr", "--epochs", "2", "--repeats", "2"]


def test_table_says_the_metrics_are_equal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    calls, real = [], bench_optimizer.run_mmbench

    def recorded(cfg):
        calls.append(cfg.model.optimizer.foreach)
        return real(cfg)

    monkeypatch.setattr(bench_optimizer, "run_mmbench", recorded)
    assert bench_optimizer.main(ARGS) == 0
    assert calls == [False, True, False, True]  # alternating, as documented
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("| bpr |"))
    assert row.endswith("| yes |")


def test_a_metric_that_differs_fails_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    real = bench_optimizer.run_mmbench

    def perturbed(cfg):
        res = real(cfg)
        if cfg.model.optimizer.foreach:
            res["metrics"]["test/ndcg@20"] += 1e-9
        return res

    monkeypatch.setattr(bench_optimizer, "run_mmbench", perturbed)
    assert bench_optimizer.main(ARGS) == 1
    captured = capsys.readouterr()
    assert "| NO |" in captured.out and "bpr: test/ndcg@20" in captured.err
