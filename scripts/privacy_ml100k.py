"""The privacy-utility curve of ML-100K-MM: user-level DP-SGD at epsilon 1, 2, 4, 8 and the non-private model
(epsilon = inf), each with its test NDCG@20 and the membership-inference attack's AUC.

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/privacy MMBENCH_CACHE_DIR=/tmp/grid/cache \
        python scripts/privacy_ml100k.py        # the cache: the mm_ml100k grid's poster and text features

Models: BPR-MF (``model=bpr``) and fusion_rec with text+image (``experiment=mm_ml100k``: pretrained
EfficientNet-Lite0 posters and all-MiniLM-L6-v2 text, the experiment's default early fusion), one seed, the
per-user random 80/10/10 split of ``experiment=mm_ml100k``. DP runs: ``privacy=dp`` with ``scope=model`` (the
whole model is DP) and, for BPR at epsilon 8 only, ``scope=shared`` (joint DP: each user's id embedding trained on
their own events alone); noise calibrated for the epoch cap (BPR 20, fusion_rec 5 epochs: CPU budget); early
stopping and the kept epoch on validation NDCG@20. The learning rate of each (model, scope) is chosen on validation
NDCG@20 at epsilon 8 from ``LR_GRID`` (the chosen run is the epsilon-8 point; the choice itself reads the private
training data outside the accounting). Non-private runs: ``privacy=audit``, the model's configured learning rate,
the same epoch cap. Test is read once per run. Every run is appended to ``runs.tsv`` (resumable: entries there are
skipped); then ``tables.md`` and ``curve.png`` are written from it.
"""

from __future__ import annotations

import argparse
import logging
import math
import resource
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mmbench import pipeline  # noqa: E402
from mmbench.config import compose  # noqa: E402

log = logging.getLogger(__name__)

EPSILONS = (1.0, 2.0, 4.0, 8.0)
# model -> scope -> the epsilons it runs at (CPU time: scope=shared at epsilon 8 only, and for BPR only)
SCOPES = {"bpr": {"model": EPSILONS, "shared": (8.0,)}, "fusion_rec": {"model": EPSILONS}}
MODELS = {
    "bpr": ["experiment=mm_ml100k", "model=bpr", "trainer.max_epochs=20"],  # the encoders run, BPR ignores them
    "fusion_rec": ["experiment=mm_ml100k", "trainer.max_epochs=5"],  # text + image, early fusion
}
LR_GRID = {"bpr": (0.01, 0.05), "fusion_rec": (0.005, 0.05)}
COMMON = ["seed=0", "eval.progress=false", "trainer.enable_progress_bar=false", "experiment_name=privacy_ml100k"]
KEEP = ["val/ndcg@20", "test/ndcg@20", "test/recall@20", "privacy/mia_auc", "privacy/mia_auc_rank", "privacy/epsilon"]
KEEP += ["privacy/delta", "privacy/noise_multiplier", "privacy/steps", "fit/epochs", "fit/best_epoch", "time/fit_s"]


def entry_key(model: str, scope: str, epsilon: float, lr: float | None) -> str:
    return f"{model}|{scope}|{epsilon:g}|{'-' if lr is None else f'{lr:g}'}"


def run_entry(model: str, scope: str, epsilon: float, lr: float | None, out: Path) -> dict:
    """One pipeline run, appended to ``out`` (``scope`` ``none`` with ``epsilon`` inf: the non-private model)."""
    key = entry_key(model, scope, epsilon, lr)
    if out.is_file():
        done = pd.read_csv(out, sep="\t")
        if key in set(done["key"]):
            return done[done["key"] == key].iloc[-1].to_dict()
    overrides = [*MODELS[model], *COMMON]
    if scope == "none":
        overrides += ["privacy=audit"]
    else:
        overrides += ["privacy=dp", f"privacy.target_epsilon={epsilon:g}", f"privacy.scope={scope}"]
        overrides += [f"model.optimizer.lr={lr:g}"]
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    result = pipeline.run(compose(overrides))
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    row = {"key": key, "model": model, "scope": scope, "epsilon": epsilon, "lr": lr if lr is not None else math.nan}
    row |= {k: result.metrics.get(k, math.nan) for k in KEEP}
    row |= {"cpu_s": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)}
    row |= {"wall_s": time.perf_counter() - t, "run_id": result.run_id, "overrides": " ".join(overrides)}
    pd.DataFrame([row]).to_csv(out, sep="\t", index=False, mode="a", header=not out.is_file(), float_format="%.6g")
    log.info("%s: val ndcg@20 %.4f, mia auc %.4f", key, row["val/ndcg@20"], row["privacy/mia_auc"])
    return row


def curve(runs: pd.DataFrame) -> pd.DataFrame:
    """The chosen runs: per (model, scope), the learning rate with the best validation NDCG@20 at epsilon 8,
    then that rate's run at every epsilon; the non-private run of each model as scope ``none``."""
    rows = []
    for (_, scope), g in runs.groupby(["model", "scope"], sort=False):
        if scope != "none":
            at8 = g[g["epsilon"] == 8.0]
            g = g[g["lr"] == at8.loc[at8["val/ndcg@20"].idxmax(), "lr"]]
        rows.append(g)
    return pd.concat(rows).sort_values(["model", "scope", "epsilon"])


def write_tables(runs: pd.DataFrame, folder: Path) -> None:
    chosen = curve(runs)
    cols = ["model", "scope", "epsilon", "lr", "privacy/epsilon", "privacy/noise_multiplier", "val/ndcg@20"]
    cols += ["test/ndcg@20", "privacy/mia_auc", "privacy/mia_auc_rank", "fit/best_epoch", "cpu_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in chosen[cols].itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in r) + " |")
    sel = runs[(runs["scope"] != "none") & (runs["epsilon"] == 8.0)][["model", "scope", "lr", "val/ndcg@20"]]
    lines += ["", "Learning rate chosen on validation NDCG@20 at epsilon 8:", ""]
    lines += ["| model | scope | lr | val/ndcg@20 |", "|---|---|---|---|"]
    lines += [f"| {m} | {s} | {lr:g} | {v:.4f} |" for m, s, lr, v in sel.itertuples(index=False)]
    lines += ["", f"CPU time of all {len(runs)} runs: {runs['cpu_s'].sum() / 60:.1f} min."]
    (folder / "tables.md").write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (model, scope), g in chosen[chosen["scope"] != "none"].groupby(["model", "scope"], sort=False):
        base = chosen[(chosen["model"] == model) & (chosen["scope"] == "none")]
        xs = [*g["epsilon"], 16.0]  # inf drawn at 16
        for ax, metric in zip(axes, ("test/ndcg@20", "privacy/mia_auc"), strict=True):
            ax.plot(xs, [*g[metric], *base[metric]], marker="o", label=f"{model}, scope={scope}")
    for ax, metric in zip(axes, ("test/ndcg@20", "privacy/mia_auc"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 2, 4, 8, 16], ["1", "2", "4", "8", "inf"])
        ax.set_xlabel("target epsilon (delta = 1/n_users; inf: no DP)")
        ax.set_ylabel(metric)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    fig.suptitle("ML-100K-MM, user-level DP-SGD: utility and membership-inference AUC")
    fig.tight_layout()
    fig.savefig(folder / "curve.png", dpi=120)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "inf" if v == math.inf else "-" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results-dir", default="results/privacy_ml100k")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    folder = Path(args.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "runs.tsv"
    if not args.tables_only:
        for model in args.models:
            run_entry(model, "none", math.inf, None, out)
            for scope, epsilons in SCOPES[model].items():
                vals = {lr: run_entry(model, scope, 8.0, lr, out)["val/ndcg@20"] for lr in LR_GRID[model]}
                lr = max(vals, key=vals.get)
                for eps in epsilons:
                    run_entry(model, scope, eps, lr, out)  # epsilon 8: the run just chosen
    write_tables(pd.read_csv(out, sep="\t"), folder)


if __name__ == "__main__":
    main()
