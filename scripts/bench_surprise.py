"""Side by side: Surprise 1.1.x and mmbench's rating models on the same ML-100K folds, in one process.

For each of the ten rows of Surprise's ML-100K table, Surprise (``pip install -e ".[peers]"``) fits and
predicts the five test folds, then mmbench does the same on the same folds (``split=kfold``, seed 0; both
receive the training events in the same order). Times are fit + test prediction, as Surprise's
``cross_validate`` reports them. Prints RMSE / MAE of both, the seconds of both, the speed ratio per
algorithm and for the whole table, and, for the deterministic algorithms, the largest difference between
the two libraries' test predictions.

    MMBENCH_DATA_DIR=/path/to/data python scripts/bench_surprise.py [--algos svd,knn_basic] [--out file.md]
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mmbench.data.interactions import Interactions
from mmbench.data.ml100k import MovieLens100K
from mmbench.models.rating.base import RatingRecommender
from mmbench.models.rating.baseline_only import BaselineOnly
from mmbench.models.rating.co_clustering import CoClustering
from mmbench.models.rating.knn import KNNBaseline, KNNBasic, KNNWithMeans
from mmbench.models.rating.nmf import NMF
from mmbench.models.rating.normal_predictor import NormalPredictor
from mmbench.models.rating.slope_one import SlopeOne
from mmbench.models.rating.svd import SVD
from mmbench.models.rating.svdpp import SVDpp
from mmbench.splits.splitters import KFoldSplit


def surprise_algos(seed: int = 0) -> dict[str, Callable[[], object]]:
    import surprise as s

    return {
        "svd": lambda: s.SVD(random_state=seed),
        "svdpp": lambda: s.SVDpp(random_state=seed),
        "nmf": lambda: s.NMF(random_state=seed),
        "slope_one": s.SlopeOne,
        "knn_basic": lambda: s.KNNBasic(verbose=False),
        "knn_with_means": lambda: s.KNNWithMeans(verbose=False),
        "knn_baseline": lambda: s.KNNBaseline(verbose=False),
        "co_clustering": lambda: s.CoClustering(random_state=seed),
        "baseline_only": lambda: s.BaselineOnly(verbose=False),
        "normal_predictor": s.NormalPredictor,
    }


MMBENCH: dict[str, Callable[[], RatingRecommender]] = {
    "svd": SVD,
    "svdpp": SVDpp,
    "nmf": NMF,
    "slope_one": SlopeOne,
    "knn_basic": KNNBasic,
    "knn_with_means": KNNWithMeans,
    "knn_baseline": KNNBaseline,
    "co_clustering": CoClustering,
    "baseline_only": BaselineOnly,
    "normal_predictor": NormalPredictor,
}
DETERMINISTIC = {"slope_one", "knn_basic", "knn_with_means", "knn_baseline", "baseline_only"}
SEEDED = {"svd", "svdpp", "nmf", "co_clustering"}  # random initialisation that can be replayed


def folds(data_dir: str, n_folds: int = 5, seed: int = 0) -> list[tuple[Interactions, Interactions]]:
    ds = MovieLens100K(data_dir, download=False).read()
    out = []
    for f in range(n_folds):
        labels = KFoldSplit(n_folds, f, seed).assign(ds)
        out.append((ds.interactions.subset(labels == 0), ds.interactions.subset(labels == 2)))
    return out


def surprise_sets(train: Interactions, test: Interactions) -> tuple[object, list]:
    """Surprise's trainset (events in mmbench's order, mmbench's ids as raw ids) and testset."""
    from surprise import Dataset, Reader

    df = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings.astype(float)})
    data = Dataset.load_from_df(df, Reader(rating_scale=(1, 5)))
    r = train.ratings.astype(float).tolist()
    trainset = data.construct_trainset(list(zip(train.users.tolist(), train.items.tolist(), r, [None] * len(r))))
    testset = list(zip(test.users.tolist(), test.items.tolist(), test.ratings.astype(float).tolist()))
    return trainset, testset


class SurpriseDraws:
    """Replays the initial random draws Surprise makes with ``random_state=seed`` (a ``RandomState``, rows in its
    inner-id order: users first, then items) in mmbench's id layout, so both libraries start from the same point."""

    def __init__(self, seed: int, trainset: object, n_users: int, n_items: int) -> None:
        self.rs = np.random.RandomState(seed)
        users = np.array([trainset.to_raw_uid(k) for k in range(trainset.n_users)])
        items = np.array([trainset.to_raw_iid(k) for k in range(trainset.n_items)])
        self.layouts = [(users, n_users), (items, n_items)]
        self.calls = 0

    def _place(self, draw: Callable[[int], np.ndarray]) -> np.ndarray:
        ids, n = self.layouts[min(self.calls, 1)]
        self.calls += 1
        vals = draw(len(ids))
        out = np.zeros((n, *vals.shape[1:]), vals.dtype)
        out[ids] = vals
        return out

    def normal(self, loc: float, scale: float, size: tuple[int, int]) -> np.ndarray:
        return self._place(lambda n: self.rs.normal(loc, scale, (n, size[1])))

    def uniform(self, low: float, high: float, size: tuple[int, int]) -> np.ndarray:
        return self._place(lambda n: self.rs.uniform(low, high, (n, size[1])))

    def integers(self, high: int, size: int) -> np.ndarray:
        return self._place(lambda n: self.rs.randint(high, size=n).astype(np.int64))


def run_surprise(make: Callable[[], object], train: Interactions, test: Interactions) -> tuple[np.ndarray, float]:
    trainset, testset = surprise_sets(train, test)
    t = time.perf_counter()
    algo = make()
    algo.fit(trainset)
    pred = np.array([p.est for p in algo.test(testset)])
    return pred, time.perf_counter() - t


def run_mmbench(
    make: Callable[[], RatingRecommender], train: Interactions, test: Interactions
) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    model = make().fit(train)
    pred = model.predict(torch.as_tensor(test.users), torch.as_tensor(test.items)).numpy()
    return pred, time.perf_counter() - t


def same_init_diff(name: str, train: Interactions, test: Interactions, seed: int = 0) -> float:
    """Largest |prediction difference| when mmbench starts from Surprise's own initial draws (seed ``seed``)."""
    trainset, _ = surprise_sets(train, test)
    model = MMBENCH[name]()
    model.make_rng = lambda: SurpriseDraws(seed, trainset, train.n_users, train.n_items)
    model.fit(train)
    ours = model.predict(torch.as_tensor(test.users), torch.as_tensor(test.items)).numpy()
    theirs, _ = run_surprise(surprise_algos(seed)[name], train, test)
    return float(np.max(np.abs(ours - theirs)))


def cv(runner: Callable, make: Callable, fs: list[tuple[Interactions, Interactions]]) -> tuple[float, float]:
    """Mean test RMSE and MAE over the folds."""
    out = []
    for train, test in fs:
        p, _ = runner(make, train, test)
        out.append((np.sqrt(np.mean((p - test.ratings) ** 2)), np.mean(np.abs(p - test.ratings))))
    return tuple(np.mean(out, axis=0))


def seed_study(fs: list, algos: list[str], n_seeds: int, out: str) -> None:
    """How much the 5-fold mean of each randomly initialised algorithm moves with the seed, in both libraries."""
    rows = []
    for name in algos:
        for seed in range(n_seeds):
            s_rmse, s_mae = cv(run_surprise, surprise_algos(seed)[name], fs)
            m_rmse, m_mae = cv(run_mmbench, functools.partial(MMBENCH[name], seed=seed), fs)
            rows.append(
                {
                    "algorithm": name,
                    "seed": seed,
                    "surprise_rmse": s_rmse,
                    "mmbench_rmse": m_rmse,
                    "surprise_mae": s_mae,
                    "mmbench_mae": m_mae,
                }
            )
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    agg = df.drop(columns="seed").groupby("algorithm", sort=False).agg(["mean", "std", "min", "max"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    text = (
        f"5-fold mean (KFoldSplit seed 0) per model seed 0..{n_seeds - 1}, then mean / std / min / max over "
        "the seeds\n\n" + markdown(df) + "\n\n" + markdown(agg.reset_index())
    )
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def markdown(df: pd.DataFrame) -> str:
    """A Markdown table (floats to 4 decimals, NaN blank) without extra dependencies."""
    cell = lambda v: "" if isinstance(v, float) and np.isnan(v) else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", default=",".join(MMBENCH), help="comma-separated rows (default: all ten)")
    ap.add_argument("--data-dir", default=os.environ.get("MMBENCH_DATA_DIR", ""))
    ap.add_argument("--out", default="", help="also write the table (Markdown) here")
    ap.add_argument(
        "--seeds",
        type=int,
        default=0,
        help="instead: the 5-fold means of the randomly initialised rows over seeds 0..N-1, both libraries",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    import surprise

    load_start = os.getloadavg()
    fs = folds(args.data_dir)
    if args.seeds:
        return seed_study(fs, [a for a in args.algos.split(",") if a in SEEDED], args.seeds, args.out)
    peers = surprise_algos()
    rows = []
    for name in args.algos.split(","):
        res = {}
        for lib, make, runner in (("surprise", peers[name], run_surprise), ("mmbench", MMBENCH[name], run_mmbench)):
            rmse, mae, secs, preds = [], [], [], []
            for train, test in fs:
                p, s = runner(make, train, test)
                rmse.append(float(np.sqrt(np.mean((p - test.ratings) ** 2))))
                mae.append(float(np.mean(np.abs(p - test.ratings))))
                secs.append(s)
                preds.append(p)
            res[lib] = (np.mean(rmse), np.mean(mae), float(np.sum(secs)), preds)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(res["surprise"][3], res["mmbench"][3]))
        row = {
            "algorithm": name,
            "surprise_rmse": res["surprise"][0],
            "mmbench_rmse": res["mmbench"][0],
            "surprise_mae": res["surprise"][1],
            "mmbench_mae": res["mmbench"][1],
            "surprise_s": res["surprise"][2],
            "mmbench_s": res["mmbench"][2],
            "speedup": res["surprise"][2] / res["mmbench"][2],
            "max_abs_pred_diff": diff if name in DETERMINISTIC else float("nan"),
            "same_init_diff": same_init_diff(name, *fs[0]) if name in SEEDED else float("nan"),
        }
        rows.append(row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    table = pd.DataFrame(rows)
    total = {"algorithm": "whole table", "surprise_s": table.surprise_s.sum(), "mmbench_s": table.mmbench_s.sum()}
    total["speedup"] = total["surprise_s"] / total["mmbench_s"]
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    text = (
        f"Surprise {surprise.__version__} vs mmbench, ML-100K, 5 folds (KFoldSplit seed 0), fit + test prediction "
        f"summed over the folds, torch threads 1, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Command: `python scripts/bench_surprise.py "
        f"{' '.join(sys.argv[1:])}`.\n\n" + markdown(table) + "\n\n"
        "speedup = surprise_s / mmbench_s; max_abs_pred_diff: the largest difference between the two libraries' "
        "test predictions (deterministic models); same_init_diff: the same when mmbench starts from Surprise's "
        "own initial random draws (fold 0). The machine was shared with other jobs: 1-minute load average "
        f"{load_start[0]:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} cores; "
        "each algorithm ran Surprise then mmbench back to back, so both saw similar load."
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
