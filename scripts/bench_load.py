"""Loading benchmark: a generated ratings file of ML-25M's shape (25,000,095 rows of ``userId,movieId,rating,
timestamp``, 162,541 users, 59,047 movies, ratings 0.5..5 in halves) read by the file loaders, each in a fresh
process: wall time and peak resident memory (``ru_maxrss``) of ``read()`` and of ``read()`` + the default
preprocessing (``dedup=last``). Target (issue 12): under 60 s and 4 GB on the 2-core machine.

    python scripts/bench_load.py                      # generates /tmp/mmbench-bench/ml-25m once, then measures
    python scripts/bench_load.py --rows 1000000       # a smaller file, for a quick check

Loaders measured: ``interactions`` (the CSV with a column mapping) and ``movielens`` (the release folder).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ML25M = {"rows": 25_000_095, "users": 162_541, "items": 59_047}


def generate(folder: Path, rows: int, seed: int = 0) -> Path:
    """``<folder>/ratings.csv`` (+ ``movies.csv``) in ML-25M's format; kept when it already has ``rows`` rows."""
    folder.mkdir(parents=True, exist_ok=True)
    path, stamp = folder / "ratings.csv", folder / ".rows"
    if path.is_file() and stamp.is_file() and stamp.read_text() == f"{rows} v3":
        return path
    rng = np.random.default_rng(seed)
    n_users = max(2, round(ML25M["users"] * rows / ML25M["rows"])) if rows < ML25M["rows"] else ML25M["users"]
    n_items = ML25M["items"]
    # events per user from lognormal activity (a few heavy users, as in ML-25M); grouped by user as ML files are
    counts = rng.multinomial(rows, (w := rng.lognormal(0.0, 1.0, n_users)) / w.sum())
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    # user u's k-th item: (base_u + k * step_u) mod n_items, step coprime with n_items: no (user, item) repeats
    base = rng.integers(0, n_items, n_users)
    step = rng.integers(1, n_items, n_users)
    step[np.gcd(step, n_items) != 1] = 1
    tmp = path.with_suffix(".part")
    schema = pa.schema(
        [("userId", pa.int64()), ("movieId", pa.int64()), ("rating", pa.float64()), ("timestamp", pa.int64())]
    )
    plain = pacsv.WriteOptions(include_header=False, quoting_style="none")  # unquoted, as the release
    with open(tmp, "wb") as f, pacsv.CSVWriter(f, schema, write_options=plain) as w:
        f.write(b"userId,movieId,rating,timestamp\n")
        chunk = 2_000_000
        for lo in range(0, rows, chunk):
            idx = np.arange(lo, min(lo + chunk, rows))
            u = np.searchsorted(starts, idx, side="right") - 1
            k = idx - starts[u]
            items = (base[u] + k * step[u]) % n_items + 1
            ratings = rng.integers(1, 11, len(idx)) / 2.0
            ts = rng.integers(789_652_009, 1_574_327_703, len(idx))
            w.write_table(
                pa.table({"userId": u + 1, "movieId": items, "rating": ratings, "timestamp": ts}, schema=schema)
            )
    tmp.replace(path)
    movies = "".join(f"{i},Movie {i} (2000),Drama\n" for i in range(1, n_items + 1))
    (folder / "movies.csv").write_text("movieId,title,genres\n" + movies)
    stamp.write_text(f"{rows} v3")
    return path


def load_interactions(folder: Path):
    from mmbench.data.interactions_file import InteractionsFile

    return InteractionsFile(
        str(folder / "ratings.csv"), user_col="userId", item_col="movieId", rating_col="rating",
        timestamp_col="timestamp",
    ).read()  # fmt: skip


def load_movielens(folder: Path):
    from mmbench.data.movielens import MovieLens

    return MovieLens(path=str(folder)).read()


LOADERS = {"interactions": load_interactions, "movielens": load_movielens}


def measure(name: str, folder: Path) -> dict:
    """In this (fresh) process: seconds and peak RSS of read(), then of the default preprocessing."""
    from mmbench.data.preprocess import Preprocess

    t = time.perf_counter()
    ds = LOADERS[name](folder)
    read_s = time.perf_counter() - t
    read_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    ds = Preprocess()(ds)
    pre_s = time.perf_counter() - t
    return {
        "loader": name,
        "events": len(ds.interactions),
        "users": ds.n_users,
        "items": ds.n_items,
        "read_s": round(read_s, 1),
        "read_peak_rss_mb": round(read_rss),
        "read_preprocess_s": round(read_s + pre_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=ML25M["rows"])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/mmbench-bench/ml-25m"))
    ap.add_argument("--loaders", nargs="+", default=list(LOADERS))
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # internal: run one loader in this process
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.dir)))
        return
    t = time.perf_counter()
    path = generate(args.dir, args.rows)
    print(f"data: {path} ({path.stat().st_size / 2**20:.0f} MiB, {args.rows:,} rows; {time.perf_counter() - t:.0f} s)")
    print(f"machine: {os.cpu_count()} CPUs, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in args.loaders:
        cmd = [sys.executable, __file__, "--measure", name, "--dir", str(args.dir)]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{name}: skipped ({last})")
            continue
        print(json.dumps(json.loads(res.stdout.strip().splitlines()[-1])))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
