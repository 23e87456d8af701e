"""scripts/bench_setting.py: the two values of a setting give the same metrics (and, logged to MLflow, the same
per-epoch curves); a difference fails the run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts import bench_setting  # noqa: E402

ARGS = ["--experiment", "quick", "--models", "bpr", "--epochs", "2", "--repeats", "2"]


def test_table_says_the_metrics_are_equal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    calls, real = [], bench_setting.run_mmbench

    def recorded(cfg):
        calls.append(cfg.model.optimizer.foreach)
        return real(cfg)

    monkeypatch.setattr(bench_setting, "run_mmbench", recorded)
    assert bench_setting.main(ARGS) == 0  # the default setting: single- against multi-tensor Adam
    assert calls == [False, True, False, True]  # alternating, as documented
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("| bpr |"))
    assert row.endswith("| yes |")


def test_a_metric_that_differs_fails_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    real = bench_setting.run_mmbench

    def perturbed(cfg):
        res = real(cfg)
        if cfg.model.optimizer.foreach:
            res["metrics"]["test/ndcg@20"] += 1e-9
        return res

    monkeypatch.setattr(bench_setting, "run_mmbench", perturbed)
    assert bench_setting.main(ARGS) == 1
    captured = capsys.readouterr()
    assert "| NO |" in captured.out and "bpr: test/ndcg@20" in captured.err


def test_logged_curves_are_compared_too(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    args = [*ARGS, "--setting", "logger.epoch_metrics_flush_s", "--values", "0", "3600", "--logger", "mlflow"]
    curves = []
    real = bench_setting.histories
    monkeypatch.setattr(bench_setting, "histories", lambda uri, run: curves.append(real(uri, run)) or curves[-1])
    assert bench_setting.main(args) == 0
    assert len(curves) == 4 and all(c == curves[0] for c in curves)
    assert [step for step, _ in curves[0]["val/ndcg_at_10"]][:2] == [0, 1] and "train/loss" in curves[0]


def test_curves_that_differ_fail_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    args = [*ARGS, "--setting", "logger.epoch_metrics_flush_s", "--values", "0", "3600", "--logger", "mlflow"]
    real, seen = bench_setting.histories, []

    def shifted(uri, run):  # the second value's runs lose their last validation point
        seen.append(run)
        curves = real(uri, run)
        return {k: v[:-1] for k, v in curves.items()} if len(seen) % 2 == 0 else curves

    monkeypatch.setattr(bench_setting, "histories", shifted)
    assert bench_setting.main(args) == 1
    assert "bpr: curves" in capsys.readouterr().err
