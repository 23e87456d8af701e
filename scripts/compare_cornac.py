"""mmbench's BPR beside Cornac's BPR on one exported split of ML-100K, Cornac's quick-start protocol.

Protocol (Cornac's README quick start): a random 80/20 split of all ratings (seed 123), test events of
unknown users or items dropped (``exclude_unknowns``), positives = test ratings >= 4, each user's training
items rated >= 4 excluded from the ranking (Cornac's ``ranking_eval``), items unseen in training are not
ranked. mmbench makes the split and writes it to ``<out>/train.tsv`` / ``test.tsv`` (raw ids); Cornac gets
exactly those rows through ``BaseMethod.from_splits``.

Cornac: ``BPR(k=10, max_iter=200, learning_rate=0.001, lambda_reg=0.01, seed=123)``, its own train and
evaluation timings. mmbench: ``BPR(embedding_dim=10)``; its optimiser settings (Adam lr, reg, batch size)
and epoch count are chosen on a validation part carved out of the training data (10% of the training
events, never the test part); then it is refit on the whole training part with the chosen epoch count
and evaluated once on test. The mmbench training time is that final fit only (as Cornac's is its one fit).

    MMBENCH_DATA_DIR=../shared/data python scripts/compare_cornac.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmbench.data.interactions import Dataset, Interactions
from mmbench.data.ml100k import MovieLens100K
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.base import Recommender
from mmbench.models.neural.bpr import BPR
from mmbench.training.trainer import NeuralTrainer

METRICS = ["auc", "map_full", "ndcg@10", "precision@10", "recall@10"]
THRESHOLD = 4.0


def ratio_split(ds: Dataset, test_size: float, seed: int) -> tuple[Interactions, Interactions]:
    """A global random split of all events, then test events of users / items unseen in training dropped."""
    inter = ds.interactions
    perm = np.random.default_rng(seed).permutation(len(inter))
    n_test = int(round(test_size * len(inter)))
    train, test = inter.subset(np.sort(perm[n_test:])), inter.subset(np.sort(perm[:n_test]))
    known_u = np.bincount(train.users, minlength=inter.n_users) > 0
    known_i = np.bincount(train.items, minlength=inter.n_items) > 0
    return train, test.subset(known_u[test.users] & known_i[test.items])


def export(ds: Dataset, parts: dict[str, Interactions], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, part in parts.items():
        paths[name] = out / f"{name}.tsv"
        ds.to_frame(part).to_csv(paths[name], sep="\t", index=False)
    return paths


def unknown_items(train: Interactions) -> Interactions:
    """Every (user, item never seen in training) pair: excluded from the ranking, as Cornac's ranking is."""
    items = np.flatnonzero(np.bincount(train.items, minlength=train.n_items) == 0)
    u = np.repeat(np.arange(train.n_users), len(items))
    i = np.tile(items, train.n_users)
    return Interactions(u, i, np.ones(len(u), np.float32), np.zeros(len(u), np.int64), train.n_users, train.n_items)


class CornacScores(Recommender):
    """A trained Cornac model's scores in mmbench's id space, to evaluate it with mmbench's Evaluator.

    Users and items Cornac does not know score 0 (they are never ranked: unknown items are excluded,
    unknown users have no test events). A check of the protocol, not a hot path: Cornac scores one
    user per call.
    """

    def __init__(self, model: object, ds: Dataset) -> None:
        self.model = model
        self.u_idx = np.array([model.uid_map.get(str(r), -1) for r in ds.user_ids])
        self.i_idx = np.array([model.iid_map.get(str(r), -1) for r in ds.item_ids])
        self.n_items = ds.n_items

    def fit(self, train: Interactions, val: Interactions | None = None) -> CornacScores:
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        out = np.zeros((len(users), self.n_items), np.float32)
        known = self.i_idx >= 0
        for row, u in enumerate(users.tolist()):
            if self.u_idx[u] >= 0:
                out[row, known] = self.model.score(int(self.u_idx[u]))[self.i_idx[known]]
        t = torch.from_numpy(out)
        return t if items is None else t[:, items]


def run_cornac(paths: dict[str, Path], seed: int) -> dict[str, object]:
    import cornac
    from cornac.eval_methods import BaseMethod
    from cornac.metrics import AUC, MAP, NDCG, Precision, Recall

    def triples(p: Path) -> list[tuple[str, str, float]]:
        df = pd.read_csv(p, sep="\t", dtype={"user": str, "item": str})
        return list(zip(df["user"], df["item"], df["rating"].astype(float), strict=True))

    method = BaseMethod.from_splits(
        train_data=triples(paths["train"]),
        test_data=triples(paths["test"]),
        rating_threshold=THRESHOLD,
        exclude_unknowns=True,
        seed=seed,
        verbose=False,
    )
    model = cornac.models.BPR(k=10, max_iter=200, learning_rate=0.001, lambda_reg=0.01, seed=seed)
    metrics = [AUC(), MAP(), NDCG(k=10), Precision(k=10), Recall(k=10)]
    res, _ = method.evaluate(model, metrics, user_based=True, show_validation=False)
    r = res.metric_avg_results
    out = {
        "auc": r["AUC"],
        "map_full": r["MAP"],
        "ndcg@10": r["NDCG@10"],
        "precision@10": r["Precision@10"],
        "recall@10": r["Recall@10"],
    }
    return out | {
        "train_s": r["Train (s)"],
        "eval_s": r["Test (s)"],
        "n_test_users": len(res.metric_user_results["AUC"]),
        "model": model,
    }


def fit_bpr(train: Interactions, val: Interactions | None, p: dict, max_epochs: int, evaluator: Evaluator):
    torch.manual_seed(0)
    model = BPR(embedding_dim=10, reg=p["reg"], init_std=0.1, optimizer=partial(torch.optim.Adam, lr=p["lr"]))
    with tempfile.TemporaryDirectory() as ck:
        trainer = NeuralTrainer(
            max_epochs=max_epochs,
            batch_size=p["batch_size"],
            monitor="ndcg@10",
            patience=5,
            enable_progress_bar=False,
            seed=0,
            checkpoint_dir=ck,
        )
        t = time.perf_counter()
        report = trainer.fit(model, train, val, evaluator)
        fit_s = time.perf_counter() - t
    return model, report, fit_s


def tune_mmbench(train: Interactions, grid: list[dict], tolerance: float) -> tuple[dict, int, list[str]]:
    """Choose Adam lr, reg, batch size and the epoch count on 10% of the training events (seed 0).

    Rule: the cheapest point (fewest optimiser steps up to its best epoch) among those whose best
    validation NDCG@10 is within ``tolerance`` of the best one: accuracy first, then training cost.
    """
    val_mask = np.random.default_rng(0).random(len(train)) < 0.1
    fit_part, val = train.subset(~val_mask), train.subset(val_mask)
    ev = Evaluator(ks=[10], metrics=["ndcg"], positive_threshold=THRESHOLD, progress=False)
    points, lines = [], []
    for p in grid:
        _, rep, fit_s = fit_bpr(fit_part, val, p, 200, ev)
        epochs = rep.best_epoch + 1
        steps = epochs * -(-len(train) // p["batch_size"])
        points.append((rep.best_score, steps, p, epochs))
        lines.append(f"| {p} | {rep.best_score:.4f} | {epochs} | {steps} | {fit_s:.1f} |")
        print(lines[-1], flush=True)
    top = max(pt[0] for pt in points)
    _, _, params, epochs = min((pt for pt in points if pt[0] >= top - tolerance), key=lambda pt: pt[1])
    return params, epochs, lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="splits/cornac_ml100k", help="where the split is exported (not committed)")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--quick", action="store_true", help="a one-point validation grid (for a smoke run)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each library (medians reported)")
    ap.add_argument("--tolerance", type=float, default=0.005, help="validation NDCG@10 traded for fewer steps")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ds = MovieLens100K(os.environ.get("MMBENCH_DATA_DIR"), download=True).read()
    train, test = ratio_split(ds, 0.2, a.seed)
    paths = export(ds, {"train": train, "test": test}, Path(a.out))
    print(f"split: {len(train)} train, {len(test)} test events (unknowns dropped), exported to {a.out}")

    if a.quick:
        grid = [{"lr": 0.01, "reg": 1e-3, "batch_size": 4096}]
    else:
        grid = [
            {"lr": lr, "reg": reg, "batch_size": bs}
            for lr, reg, bs in itertools.product([0.01, 0.02, 0.05], [1e-4, 1e-3, 1e-2], [4096, 8192, 16384])
        ]
    print("| mmbench BPR validation point | val ndcg@10 | best epochs | steps | fit s |\n|---|---|---|---|---|")
    params, epochs, _ = tune_mmbench(train, grid, a.tolerance)
    print(f"chosen on validation: {params}, {epochs} epochs")

    metrics = ["auc", "map_full", "ndcg", "precision", "recall"]
    ev = Evaluator(ks=[10], metrics=metrics, positive_threshold=THRESHOLD, progress=False)
    exclude = [train.subset(train.ratings >= THRESHOLD), unknown_items(train)]

    def run_mmbench() -> dict[str, float]:
        model, _, fit_s = fit_bpr(train, None, params, epochs, ev)
        t = time.perf_counter()
        r = ev.evaluate(model, test, exclude)
        return {m: r.means[m] for m in METRICS} | {
            "train_s": fit_s,
            "eval_s": time.perf_counter() - t,
            "n_test_users": r.n_users,
        }

    # the machine is shared: time both `repeats` times, alternating which goes first; report medians
    runs: dict[str, list[dict[str, float]]] = {"Cornac BPR": [], "mmbench BPR": []}
    for rep in range(a.repeats):
        order = [("Cornac BPR", lambda: run_cornac(paths, a.seed)), ("mmbench BPR", run_mmbench)]
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            runs[name].append(fn())
            print(f"repeat {rep}: {name} train {runs[name][-1]['train_s']:.2f}s eval {runs[name][-1]['eval_s']:.2f}s")
    results = {
        name: {k: float(np.median([r[k] for r in rs])) for k in rs[0] if k != "model"} for name, rs in runs.items()
    }
    # protocol check: Cornac's last trained model, ranked and scored by mmbench's evaluator
    t = time.perf_counter()
    check = ev.evaluate(CornacScores(runs["Cornac BPR"][-1]["model"], ds), test, exclude)
    cornac_last = runs["Cornac BPR"][-1]
    print("\nprotocol check, Cornac's last BPR model: metric  Cornac's evaluation  mmbench's evaluation")
    for m in METRICS:
        print(f"  {m:<14}{cornac_last[m]:.6f}  {check.means[m]:.6f}")
    print(f"  test users    {cornac_last['n_test_users']}  {check.n_users}  ({time.perf_counter() - t:.1f}s)")

    print(
        f"\nmedians over {a.repeats} runs each (metrics of a seeded run repeat; Cornac's BPR trains with all threads)"
    )
    cols = ["AUC", "MAP", "NDCG@10", "Precision@10", "Recall@10", "train (s)", "eval (s)", "test users"]
    keys = [*METRICS, "train_s", "eval_s", "n_test_users"]
    print("\n| | " + " | ".join(cols) + " |\n" + "|---" * (len(cols) + 1) + "|")
    for name, res in results.items():
        cells = [
            f"{res[k]:.4f}" if k in METRICS else f"{res[k]:.2f}" if k.endswith("_s") else str(int(res[k])) for k in keys
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        f"\nmmbench BPR: embedding 10, Adam lr {params['lr']}, reg {params['reg']}, "
        f"batch {params['batch_size']}, {epochs} epochs"
    )


if __name__ == "__main__":
    main()
