"""Measure training and evaluation time against torch's thread count, with the other core idle or busy.

Chooses the default of the ``threads`` setting. Each measurement runs in a fresh process
(threads must be set before torch does any work); prints a Markdown table.

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_threads.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import time

WORK = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from mmbench.data.ml100k import MovieLens100K
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.models.topn.itemknn import ItemKNN
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer
import os, tempfile
ds = MovieLens100K(os.environ["MMBENCH_DATA_DIR"], download=False).read()
from mmbench.splits import load_or_create
with tempfile.TemporaryDirectory(prefix="mmbench-threads-") as d:  # the split is read into memory
    sp = load_or_create(ds, RandomSplit(), d)
ev = Evaluator(progress=False)
t = time.perf_counter()
NeuralTrainer(max_epochs=20, patience=1000, enable_progress_bar=False).fit(BPR(), sp.train, sp.val, ev)
bpr = (time.perf_counter() - t) / 20
t = time.perf_counter()
m = ItemKNN().fit(sp.train)
ev.evaluate(m, sp.test, [sp.train, sp.val])
knn = time.perf_counter() - t
print(json.dumps({"bpr_epoch_s": bpr, "itemknn_fit_eval_s": knn}))
"""


def spin(stop):
    while not stop.is_set():
        pass


def measure(threads: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", WORK, str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = p.parse_args()
    rows = []
    for load in ("idle", "busy"):
        stop = mp.Event()
        spinner = mp.Process(target=spin, args=(stop,)) if load == "busy" else None
        if spinner:
            spinner.start()
            time.sleep(0.5)
        try:
            for th in a.threads:
                runs = [measure(th) for _ in range(a.repeats)]
                rows.append((load, th, {k: statistics.median(r[k] for r in runs) for k in runs[0]}))
        finally:
            stop.set()
            if spinner:
                spinner.join()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; medians of {a.repeats}")
    print("| other core | threads | BPR epoch on ML-100K (s) | ItemKNN fit + test eval (s) |")
    print("|---|---|---|---|")
    for load, th, m in rows:
        print(f"| {load} | {th} | {m['bpr_epoch_s']:.3f} | {m['itemknn_fit_eval_s']:.3f} |")


if __name__ == "__main__":
    main()
