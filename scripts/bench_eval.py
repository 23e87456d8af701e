"""Time the full-ranking evaluation (``Evaluator.evaluate``) on synthetic data of growing size, for a model with
many tied scores (Pop), a sparse neighbourhood model (ItemKNN) and a model with continuous scores (BPR-MF with its
initial weights: scoring cost without training). Prints a Markdown table and, with ``--json``, writes the medians.

    python scripts/bench_eval.py --sizes 943x1682 5000x10000 20000x10000 --repeats 3 [--json out.json]

Run it from two checkouts with the same arguments to compare evaluators (``PYTHONPATH=<checkout>``); the NDCG@20
column checks that both rank the same. Data: ``--per-user`` events per user, items drawn by a Zipf-like popularity
(exponent 0.8), a random 10% of the events as the evaluated part, the rest as training (masked). One torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time

import numpy as np
import torch

from mmbench.data.interactions import Interactions
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.models.topn.itemknn import ItemKNN
from mmbench.models.topn.pop import Pop


def synthetic(n_users: int, n_items: int, per_user: int, seed: int = 0) -> tuple[Interactions, Interactions]:
    """(training, evaluated) parts of ``n_users`` x ``per_user`` Zipf-popular events, 90 / 10 at random."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = np.repeat(np.arange(n_users), per_user)
    keys = np.unique(users * n_items + rng.choice(n_items, len(users), p=p / p.sum()))
    u, i = keys // n_items, keys % n_items
    held = rng.random(len(keys)) < 0.1

    def part(m: np.ndarray) -> Interactions:
        n = int(m.sum())
        return Interactions(
            users=u[m], items=i[m], ratings=np.ones(n, np.float32), timestamps=np.zeros(n, np.int64),
            n_users=n_users, n_items=n_items,
        )  # fmt: skip

    return part(~held), part(held)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["943x1682", "5000x10000"], help="USERSxITEMS")
    ap.add_argument("--per-user", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    for size in args.sizes:
        n_users, n_items = (int(x) for x in size.split("x"))
        train, target = synthetic(n_users, n_items, args.per_user)
        ev = Evaluator(progress=False)
        pop, knn = Pop(), ItemKNN()
        pop.fit(train)
        knn.fit(train)
        torch.manual_seed(0)
        bpr = BPR()
        bpr.build(train)
        for name, model in (("pop", pop), ("itemknn", knn), ("bpr (untrained)", bpr)):
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = ev.evaluate(model, target, [train])
                times.append(time.perf_counter() - t)
            rows.append(
                {"size": size, "model": name, "eval_s": statistics.median(times), "ndcg@20": result.means["ndcg@20"]}
            )
            print(rows[-1], flush=True)
    load = os.getloadavg()
    print(f"\nmmbench {commit}, {platform.machine()}, {os.cpu_count()} cores, one torch thread, load {load[0]:.2f}")
    print(f"median of {args.repeats}\n\n| users x items | model | evaluate s | NDCG@20 |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['model']} | {r['eval_s']:.2f} | {r['ndcg@20']:.6f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"commit": commit, "load": load, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
