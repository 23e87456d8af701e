"""Recompute a run's test metrics from its artifacts alone, independently of mmbench's evaluator.

Reads ``split/{train,val,test}.tsv`` and ``recommendations/test_topk.tsv`` from a run's
artifact folder and recomputes Recall/NDCG/Precision/Hit/MAP/MRR@K with plain Python
(sets and loops, no numpy/torch), so a bug in the vectorised evaluator cannot hide; also their means over
the sparse users (``sparse/<metric>``: at most the ``--sparse-quantile`` quantile of training events) and over
each user group of the split (``<group>/<metric>``, e.g. ``truncated`` of split=sparse_history; ``split.json``).

    python scripts/recompute_metrics.py <artifact-folder> [--ks 10 20] [--positive-threshold 4] [--sparse-quantile 0.25]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path


def read_pairs(path: Path, threshold: float | None = None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if threshold is None or float(row["rating"]) >= threshold:
                out[row["user"]].add(row["item"])
    return out


def quantile(values: list[int], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), by hand."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def recompute(
    folder: Path, ks: list[int], threshold: float | None = None, sparse_quantile: float = 0.25
) -> dict[str, float]:
    train = read_pairs(folder / "split" / "train.tsv")
    val = read_pairs(folder / "split" / "val.tsv")
    everyone = set(train) | set(val) | set(read_pairs(folder / "split" / "test.tsv"))
    n_train = {u: len(train.get(u, ())) for u in everyone}
    cut = quantile(list(n_train.values()), sparse_quantile)
    test = read_pairs(folder / "split" / "test.tsv", threshold)
    lists: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with open(folder / "recommendations" / "test_topk.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lists[row["user"]].append((int(row["rank"]), row["item"]))
    meta = json.loads((folder / "split" / "split.json").read_text())
    groups = {g: {str(u) for u in members} for g, members in meta.get("groups", {}).items()}
    sums: dict[str, float] = defaultdict(float)
    sparse_sums: dict[str, float] = defaultdict(float)
    group_sums: dict[str, float] = defaultdict(float)
    users = [u for u, items in test.items() if items]
    sparse_users = [u for u in users if n_train[u] <= cut]
    group_users = {g: [u for u in users if u in members] for g, members in groups.items()}
    for u in users:
        mine: dict[str, float] = {}
        ranked = [item for _, item in sorted(lists[u])]
        seen = train.get(u, set()) | val.get(u, set())
        if any(item in seen for item in ranked):
            raise AssertionError(f"user {u}: a training or validation item is in the test top-K list")
        rel = test[u]
        for k in ks:
            top = ranked[:k]
            hits = [1 if item in rel else 0 for item in top]
            n_hit = sum(hits)
            mine[f"recall@{k}"] = n_hit / len(rel)
            mine[f"precision@{k}"] = n_hit / k
            mine[f"hit@{k}"] = 1.0 if n_hit else 0.0
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
            mine[f"ndcg@{k}"] = dcg / idcg
            ap, found = 0.0, 0
            for r, h in enumerate(hits):
                if h:
                    found += 1
                    ap += found / (r + 1)
            mine[f"map@{k}"] = ap / min(k, len(rel))
            first = next((r for r, h in enumerate(hits) if h), None)
            mine[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
        for key, v in mine.items():
            sums[key] += v
            if n_train[u] <= cut:
                sparse_sums[f"sparse/{key}"] += v
            for g, members in groups.items():
                if u in members:
                    group_sums[f"{g}/{key}"] += v
    out = {key: v / len(users) for key, v in sums.items()}
    out |= {key: v / len(group_users[key.split("/")[0]]) for key, v in group_sums.items()}
    return out | {key: v / len(sparse_users) for key, v in sparse_sums.items() if sparse_users}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="a run's artifact folder")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    p.add_argument("--positive-threshold", type=float, default=None)
    p.add_argument("--sparse-quantile", type=float, default=0.25)
    a = p.parse_args(argv)
    json.dump(recompute(a.folder, a.ks, a.positive_threshold, a.sparse_quantile), sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
