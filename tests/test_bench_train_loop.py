"""scripts/bench_train_loop.py: the bare loop and the trainer leave the same weights, and a mismatch stops it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts import bench_train_loop  # noqa: E402


def test_table_of_the_bare_loop_and_each_batches_per_call(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    argv = ["bench", "--experiment", "quick", "--models", "bpr", "--epochs", "2", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--batches-per-call", "1", "3", "--out", str(tmp_path)])
    bench_train_loop.main()
    rows = [r for r in (tmp_path / "train_loop.md").read_text().splitlines() if r.startswith("| bpr |")]
    assert [r.split(" | ")[1] for r in rows] == ["bare", "trainer 1", "trainer 3", "bare nn.Embedding"]
    assert rows[0].split(" | ")[3] == "1.00"  # bare against itself


def test_other_weights_than_the_bare_loop_stop_the_benchmark(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    real = bench_train_loop.trainer

    def perturbed(*args):
        s, state = real(*args)
        return s, {k: v + 1e-7 if v.is_floating_point() else v for k, v in state.items()}

    monkeypatch.setattr(bench_train_loop, "trainer", perturbed)
    argv = ["bench", "--experiment", "quick", "--models", "bpr", "--epochs", "1", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match="other weights"):
        bench_train_loop.main()
