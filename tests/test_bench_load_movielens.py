"""scripts/bench_load.py: the generated ML-25M-shaped folder is a valid release that the movielens loader reads
whole, and the measurement runs the loader in a child process."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.bench_load import BENCHES, measure  # noqa: E402


def test_generated_release_loads_and_is_measured(tmp_path):
    make, load = BENCHES["movielens"]
    make(tmp_path, 5_000, 0)
    lines = (tmp_path / "ratings.csv").read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp" and len(lines) == 5_001
    users = np.array([int(line.split(",")[0]) for line in lines[1:]])
    assert (np.diff(users) >= 0).all()  # sorted by user, as the release
    assert load(tmp_path) == 5_000
    res = measure("movielens", tmp_path)
    assert res["events"] == 5_000 and res["peak_rss_mb"] > 50 and 0 < res["load_s"] <= res["process_s"]
