"""scripts/bench_load.py: the generated ML-25M-shaped file is a valid MovieLens release and a valid interactions
file, read whole by both loaders (no repeated pair, so the default preprocessing keeps every row)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripts.bench_load import generate, measure  # noqa: E402


def test_generated_release_loads_whole_with_both_loaders(tmp_path):
    path = generate(tmp_path, 5_000)
    lines = path.read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp"
    assert len(lines) == 5_001
    users = np.array([int(line.split(",")[0]) for line in lines[1:]])
    assert (np.diff(users) >= 0).all()  # grouped by user, as the release
    for loader in ("interactions", "movielens"):
        res = measure(loader, tmp_path)
        assert res["events"] == 5_000 and res["users"] == len(np.unique(users)), loader
        assert res["peak_rss_mb"] > 50 and 0 <= res["read_s"] <= res["read_preprocess_s"] + 0.1
