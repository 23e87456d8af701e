"""Loading benchmark: generate a large file in a dataset's documented format, then time its loader and measure
its peak memory in a fresh process (so imports and earlier allocations do not count twice).

    python scripts/bench_load.py movielens --rows 25000095 --dir /tmp/bench_ml25m

Each format is one small pair of functions registered in ``BENCHES``: ``make(folder, rows, seed)`` writes the
files, ``load(folder)`` reads them with the mmbench loader and returns the number of events read. The defaults
are ML-25M's shape (25,000,095 ratings, 162,541 users, 59,047 rated of 62,423 movies).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ML25M = {"users": 162_541, "movies": 62_423, "rated": 59_047}
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy"]


def make_movielens(folder: Path, rows: int, seed: int = 0) -> None:
    """An ML-25M-shaped release: ``ratings.csv`` (header, ``userId,movieId,rating,timestamp``, sorted by user,
    half-star ratings, 10-digit timestamps) written in 5M-row chunks, and ``movies.csv``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    movie_ids = np.sort(rng.choice(200_000, ML25M["movies"], replace=False)) + 1
    rated = movie_ids[np.sort(rng.choice(len(movie_ids), ML25M["rated"], replace=False))]
    # users sorted (as in the release); every user gets at least one rating
    n_users = min(ML25M["users"], rows)
    counts = rng.multinomial(rows - n_users, np.full(n_users, 1 / n_users)) + 1
    with open(folder / "ratings.csv", "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        start = 0
        user_of_row = np.repeat(np.arange(1, n_users + 1, dtype=np.int32), counts)
        while start < rows:
            end = min(start + 5_000_000, rows)
            n = end - start
            table = pa.table(
                {
                    "userId": user_of_row[start:end],
                    "movieId": rated[rng.integers(0, len(rated), n)].astype(np.int32),
                    "rating": (rng.integers(1, 11, n) / 2).astype(np.float32),
                    "timestamp": rng.integers(789_652_009, 1_574_327_703, n, dtype=np.int64),
                }
            )
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False))
            start = end
    lines = ["movieId,title,genres"]
    for k, m in enumerate(movie_ids):
        genres = "|".join(GENRES[j] for j in range(len(GENRES)) if (k >> j) % 3 == 0) or "(no genres listed)"
        lines.append(f'{m},"Movie {m}, The ({1900 + k % 120})",{genres}')
    (folder / "movies.csv").write_text("\n".join(lines) + "\n")


def load_movielens(folder: Path) -> int:
    from mmbench.data.movielens import MovieLens

    return len(MovieLens(str(folder)).read().interactions)


BENCHES: dict[str, tuple[Callable[[Path, int, int], None], Callable[[Path], int]]] = {
    "movielens": (make_movielens, load_movielens),
}


def measure(name: str, folder: Path) -> dict[str, float]:
    """Run ``load`` in a child process: wall seconds of the load itself, and the child's peak RSS."""
    code = (
        "import json, sys, time; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from scripts.bench_load import BENCHES; t = time.perf_counter(); "
        "n = BENCHES[sys.argv[2]][1](Path(sys.argv[3])); "
        "print(json.dumps({'events': n, 'load_s': time.perf_counter() - t}))"
    )
    argv = [str(Path(__file__).resolve().parents[1]), name, str(folder)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True, text=True)
    total = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if peak < before:
        raise RuntimeError("peak RSS of the child not measurable")
    return {**result, "process_s": total, "peak_rss_mb": peak / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=sorted(BENCHES))
    ap.add_argument("--rows", type=int, default=25_000_095)
    ap.add_argument("--dir", type=Path, required=True, help="where the generated files go (reused if present)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    make, _ = BENCHES[args.format]
    marker = args.dir / f".rows-{args.rows}-seed-{args.seed}"
    if not marker.is_file():
        t = time.perf_counter()
        make(args.dir, args.rows, args.seed)
        marker.touch()
        print(f"generated {args.rows:,} rows in {args.dir} in {time.perf_counter() - t:.1f} s", flush=True)
    size = sum(p.stat().st_size for p in args.dir.iterdir() if p.is_file())
    res = measure(args.format, args.dir)
    print(
        json.dumps(
            {"format": args.format, "rows": args.rows, "bytes": size, **res, "loadavg": os.getloadavg()[0]},
            indent=None,
        )
    )


if __name__ == "__main__":
    main()
