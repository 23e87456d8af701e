"""Recompute a run's test metrics from its artifacts (and the split they reference), apart from mmbench's evaluator.

Reads ``recommendations/test_topk.tsv`` from a run's artifact folder and the split's ``{train,val,test}.tsv``
from the folder its ``split/split.json`` names (``directory``: runs reference the split stored once per
fingerprint; a folder with its own ``split/*.tsv`` is read as is) and recomputes
Recall/NDCG/Precision/Hit/MAP/MRR@K with plain Python (sets and loops, no numpy/torch), so a bug in the
vectorised evaluator cannot hide; also their means over
the sparse users (``sparse/<metric>``): the users flagged ``sparse`` = 1 in ``metrics/per_user_test.tsv``, the
evaluator's one definition of the bucket (runs without that column get no sparse metrics). A top-K list
shorter than K (fewer rankable items) scores its missing ranks as misses; precision still divides by K.
Also each user group of the split (``<group>/<metric>``, e.g. ``truncated`` of split=sparse_history;
``split.json``).

    python scripts/recompute_metrics.py <artifact-folder> [--ks 10 20] [--positive-threshold 4]
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


def sparse_users(folder: Path) -> set[str] | None:
    """The users the evaluator flagged ``sparse`` in ``metrics/per_user_test.tsv`` (None without the column)."""
    path = folder / "metrics" / "per_user_test.tsv"
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or "sparse" not in rows[0]:
        return None
    return {row["user"] for row in rows if row["sparse"] == "1"}


def split_folder(folder: Path) -> Path:
    """Where the run's ``train/val/test.tsv`` are: its own ``split/``, else the folder ``split/split.json`` names."""
    own = folder / "split"
    if (own / "train.tsv").is_file():
        return own
    meta = json.loads((own / "split.json").read_text())
    return Path(meta["directory"])


def recompute(folder: Path, ks: list[int], threshold: float | None = None) -> dict[str, float]:
    parts = split_folder(folder)
    train = read_pairs(parts / "train.tsv")
    val = read_pairs(parts / "val.tsv")
    sparse = sparse_users(folder) or set()
    test = read_pairs(parts / "test.tsv", threshold)
    lists: dict[str, list[tuple[int, str]]] = defaultdict(list)
    with open(folder / "recommendations" / "test_topk.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            lists[row["user"]].append((int(row["rank"]), row["item"]))
    meta_path = folder / "split" / "split.json"  # groups (e.g. truncated users); absent in hand-made folders
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    groups = {g: {str(u) for u in members} for g, members in meta.get("groups", {}).items()}
    sums: dict[str, float] = defaultdict(float)
    sparse_sums: dict[str, float] = defaultdict(float)
    group_sums: dict[str, float] = defaultdict(float)
    users = [u for u, items in test.items() if items]
    n_sparse = sum(1 for u in users if u in sparse)
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
            if u in sparse:
                sparse_sums[f"sparse/{key}"] += v
            for g, members in groups.items():
                if u in members:
                    group_sums[f"{g}/{key}"] += v
    out = {key: v / len(users) for key, v in sums.items()}
    out |= {key: v / len(group_users[key.split("/")[0]]) for key, v in group_sums.items()}
    return out | {key: v / n_sparse for key, v in sparse_sums.items() if n_sparse}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path, help="a run's artifact folder")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20])
    p.add_argument("--positive-threshold", type=float, default=None)
    a = p.parse_args(argv)
    json.dump(recompute(a.folder, a.ks, a.positive_threshold), sys.stdout, indent=2, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
