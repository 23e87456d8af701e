"""What a user waits for: start-up, per-job overhead and Surprise's whole table, mmbench against Surprise itself.

In one run on one machine, each measured in a fresh process as a user starts it:

1. ``mmbench --help`` (wall seconds, median of ``--repeats``);
2. ``mmbench model=pop logger=none``: seconds to the job's start (``pipeline.run`` entered) and in total;
3. ``mmbench experiment=surprise_ml100k`` end to end (new work folder: the split is made as on a first run; the
   MLflow store exists, as after a user's first run, unless ``--cold-store``), and the per-job overhead: wall
   time minus start-up minus every job's fit and evaluation (``time/fit_s``, ``time/eval_*``), divided by the jobs;
4. scikit-surprise (``pip install -e ".[peers]"``) running the same algorithms on the same five folds (mmbench's
   ``KFoldSplit``, seed 0, exported as files before the clock starts) in a fresh process: import, read the folds,
   fit and test every fold, RMSE / MAE;

then prints the ratio (Surprise's seconds / mmbench's), the 1-minute load average before and after each part,
and the numbers check: mmbench's RMSE / MAE per model (mean over the folds) against the committed
``results/surprise_ml100k/table.csv`` (they must be equal to its 6 significant digits) and beside Surprise's.

    MMBENCH_DATA_DIR=/path/to/data python scripts/bench_overhead.py [--out file.md] [--table-repeats 3]
    python scripts/bench_overhead.py --models baseline_only,slope_one --folds 0,1   # a quick partial check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MODELS = "svd,svdpp,nmf,slope_one,knn_basic,knn_with_means,knn_baseline,co_clustering,baseline_only,normal_predictor"

# Entering pipeline.run is the job's start; the child prints the wall clock there.
JOB_START = """
import sys, time
import mmbench.pipeline as p
_run = p.run
def run(cfg):
    print(f"MMBENCH_JOB_START {time.time()!r}", flush=True)
    return _run(cfg)
p.run = run
sys.argv = ["mmbench", *sys.argv[1:]]
from mmbench.cli import main
main()
"""

# Surprise's side, in its own process: the clock runs from before `import surprise` to the last fold's test.
SURPRISE = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pandas as pd
import surprise as s
from surprise import accuracy
folder, models = sys.argv[1], sys.argv[2].split(",")
make = {
    "svd": lambda: s.SVD(random_state=0), "svdpp": lambda: s.SVDpp(random_state=0),
    "nmf": lambda: s.NMF(random_state=0), "slope_one": s.SlopeOne,
    "knn_basic": lambda: s.KNNBasic(verbose=False), "knn_with_means": lambda: s.KNNWithMeans(verbose=False),
    "knn_baseline": lambda: s.KNNBaseline(verbose=False), "co_clustering": lambda: s.CoClustering(random_state=0),
    "baseline_only": lambda: s.BaselineOnly(verbose=False), "normal_predictor": s.NormalPredictor,
}
folds = json.load(open(f"{folder}/folds.json"))
out = {}
for name in models:
    rmse, mae = [], []
    for f in folds:
        train = pd.read_csv(f"{folder}/train{f}.tsv", sep="\\t")
        test = pd.read_csv(f"{folder}/test{f}.tsv", sep="\\t")
        data = s.Dataset.load_from_df(train[["user", "item", "rating"]], s.Reader(rating_scale=(1, 5)))
        trainset = data.build_full_trainset()
        algo = make[name]()
        algo.fit(trainset)
        pred = algo.test(list(test[["user", "item", "rating"]].itertuples(index=False, name=None)))
        rmse.append(accuracy.rmse(pred, verbose=False))
        mae.append(accuracy.mae(pred, verbose=False))
    out[name] = {"rmse": float(np.mean(rmse)), "mae": float(np.mean(mae))}
print("SURPRISE " + json.dumps({"seconds": time.perf_counter() - t0, "table": out}))
"""


def load() -> float:
    return os.getloadavg()[0]


def env_for(work: Path) -> dict[str, str]:
    env = {**os.environ, "MMBENCH_WORK_DIR": str(work), "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)  # the default store of the work folder, created by the run
    return env


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    t = time.time()
    out = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    wall = time.time() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return wall, out.stdout


def start_up(work: Path, repeats: int) -> dict[str, float]:
    env = env_for(work)
    helps = [timed([sys.executable, "-m", "mmbench", "--help"], env, work)[0] for _ in range(repeats)]
    starts, totals = [], []
    for _ in range(repeats):
        t = time.time()
        wall, out = timed([sys.executable, "-c", JOB_START, "model=pop", "logger=none"], env, work)
        line = next(x for x in out.splitlines() if x.startswith("MMBENCH_JOB_START"))
        starts.append(float(line.split()[1]) - t)
        totals.append(wall)
    return {
        "help_s": statistics.median(helps),
        "pop_job_start_s": statistics.median(starts),
        "pop_total_s": statistics.median(totals),
    }


def export_folds(data_dir: str, folds: list[int], folder: Path) -> None:
    """mmbench's KFoldSplit folds (seed 0) as ``train<f>.tsv`` / ``test<f>.tsv``, events in mmbench's order."""
    from mmbench.data.ml100k import MovieLens100K
    from mmbench.splits.splitters import KFoldSplit

    ds = MovieLens100K(data_dir, download=False).read()
    for f in folds:
        labels = KFoldSplit(5, f, 0).assign(ds)
        for part, code in (("train", 0), ("test", 2)):
            ds.to_frame(ds.interactions.subset(labels == code)).to_csv(folder / f"{part}{f}.tsv", sep="\t", index=False)
    (folder / "folds.json").write_text(json.dumps(folds))


def mmbench_table(
    work: Path, models: str, folds: list[int], cold_store: bool
) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """Wall seconds of ``mmbench experiment=surprise_ml100k`` (the given models and folds), its table and its
    runs' time metrics."""
    from mlflow.tracking import MlflowClient

    if not cold_store:  # the store a user's first run created (its creation: MLflow's schema migrations, ~3 s)
        MlflowClient(f"sqlite:///{work}/mlflow.db").search_experiments()

    args = [sys.executable, "-m", "mmbench", "experiment=surprise_ml100k"]
    if models != MODELS or folds != [0, 1, 2, 3, 4]:
        args += [f"model={models}", "split.fold=" + ",".join(map(str, folds))]
    wall, _ = timed(args, env_for(work), work)
    table = pd.read_csv(work / "results" / "surprise_ml100k" / "table.csv")
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    exp = client.get_experiment_by_name("surprise_ml100k")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    times = pd.DataFrame([r.data.metrics for r in runs]).filter(like="time/")
    return wall, table, times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("MMBENCH_DATA_DIR", ""))
    ap.add_argument("--models", default=MODELS, help="comma-separated conf/model options (default: the ten rows)")
    ap.add_argument("--folds", default="0,1,2,3,4")
    ap.add_argument("--repeats", type=int, default=3, help="start-up measurements (median)")
    ap.add_argument("--table-repeats", type=int, default=1, help="runs of mmbench's table (median; each checked)")
    ap.add_argument("--table-out", default="", help="copy the median run's README.md / table.csv into this folder")
    ap.add_argument("--cold-store", action="store_true", help="count creating the MLflow store in mmbench's time")
    ap.add_argument("--out", default="", help="also write the report (Markdown) here")
    a = ap.parse_args()
    if not a.data_dir:
        raise SystemExit("set MMBENCH_DATA_DIR (or --data-dir) to the folder holding movielens/ml-100k")
    os.environ["MMBENCH_DATA_DIR"] = str(Path(a.data_dir).resolve())
    folds = [int(f) for f in a.folds.split(",")]
    models = ",".join(m for m in a.models.split(","))
    loads = {"start": load()}
    with tempfile.TemporaryDirectory(prefix="mmbench-bench-overhead-") as tmp:
        root = Path(tmp)
        (root / "startup").mkdir()
        (root / "folds").mkdir()
        su = start_up(root / "startup", a.repeats)
        loads["after start-up"] = load()
        tables = []
        for r in range(a.table_repeats):
            (root / f"table{r}").mkdir()
            tables.append((*mmbench_table(root / f"table{r}", models, folds, a.cold_store), root / f"table{r}"))
            loads[f"after mmbench {r + 1}"] = load()
        walls = [t[0] for t in tables]
        for _, other, _, _ in tables[1:]:  # every repeat gives the same numbers
            pd.testing.assert_frame_equal(other.filter(regex="rmse|mae"), tables[0][1].filter(regex="rmse|mae"))
        m_wall, table, times, folder = sorted(tables, key=lambda t: t[0])[len(tables) // 2]
        if a.table_out:
            Path(a.table_out).mkdir(parents=True, exist_ok=True)
            for name in ("README.md", "table.csv"):
                shutil.copy(folder / "results" / "surprise_ml100k" / name, Path(a.table_out) / name)
        export_folds(os.environ["MMBENCH_DATA_DIR"], folds, root / "folds")
        _, out = timed([sys.executable, "-c", SURPRISE, str(root / "folds"), models], env_for(root), root)
        loads["after Surprise"] = load()
    theirs = json.loads(next(x for x in out.splitlines() if x.startswith("SURPRISE "))[len("SURPRISE ") :])
    s_wall = theirs["seconds"]
    n_jobs = len(times)
    work_s = float(times.sum().sum())  # fit and evaluation of every job (time/data_s is overhead: left out)
    work_s -= float(times.get("time/data_s", pd.Series(dtype=float)).sum())
    per_job = (m_wall - su["pop_job_start_s"] - work_s) / max(n_jobs, 1)

    committed = pd.read_csv(ROOT / "results" / "surprise_ml100k" / "table.csv").set_index("model")
    check = []
    for _, row in table.set_index("model").loc[models.split(",")].reset_index().iterrows():
        ref = committed.loc[row["model"]]
        same = all(f"{row[c]:.6g}" == f"{ref[c]:.6g}" for c in ("rmse_mean", "mae_mean")) if len(folds) == 5 else None
        check.append(
            {
                "model": row["model"],
                "rmse": row["rmse_mean"],
                "rmse committed": ref["rmse_mean"],
                "mae": row["mae_mean"],
                "mae committed": ref["mae_mean"],
                "same": {True: "yes", False: "**NO**", None: "(partial folds)"}[same],
                "Surprise rmse": theirs["table"][row["model"]]["rmse"],
                "Surprise mae": theirs["table"][row["model"]]["mae"],
            }
        )
    check = pd.DataFrame(check)
    lines = [
        f"mmbench vs scikit-surprise, ML-100K, {len(models.split(','))} algorithms x {len(folds)} folds "
        f"(KFoldSplit seed 0), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"command `python scripts/bench_overhead.py {' '.join(sys.argv[1:])}`",
        "",
        "| measure | seconds |",
        "|---|---|",
        f"| `mmbench --help` | {su['help_s']:.2f} |",
        f"| `mmbench model=pop logger=none`: job start | {su['pop_job_start_s']:.2f} |",
        f"| `mmbench model=pop logger=none`: total | {su['pop_total_s']:.2f} |",
        f"| `mmbench experiment=surprise_ml100k` end to end ({'new' if a.cold_store else 'existing'} MLflow store), "
        f"median of {len(walls)}: {', '.join(f'{w:.1f}' for w in walls)} | {m_wall:.2f} |",
        f"| of which fit + evaluation, all {n_jobs} jobs | {work_s:.2f} |",
        f"| per-job overhead (end to end - job start - fit/evaluation) / jobs | {per_job:.3f} |",
        f"| Surprise, same algorithms and folds, end to end | {s_wall:.2f} |",
        f"| **ratio Surprise / mmbench** | **{s_wall / m_wall:.2f}x** |",
        "",
        "1-minute load average: " + ", ".join(f"{k} {v:.2f}" for k, v in loads.items()),
        "",
        "Numbers check (mean over the folds; `same`: equal to the committed results/surprise_ml100k/table.csv "
        "to 6 significant digits):",
        "",
        "| " + " | ".join(check.columns) + " |",
        "|" + "---|" * len(check.columns),
        *(
            "| " + " | ".join(f"{v:.4f}" if isinstance(v, float | np.floating) else str(v) for v in r) + " |"
            for r in check.itertuples(index=False)
        ),
    ]
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0 if (check["same"] != "**NO**").all() else 1


if __name__ == "__main__":
    sys.exit(main())
