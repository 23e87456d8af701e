"""Plots of a table: bars with error bars, metric@K curves, fit time, training FLOPs and fit energy against accuracy
(PNG, matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmbench.evaluation.metrics import metric_key
from mmbench.reporting.aggregation import Table


def plots(table: Table, runs: pd.DataFrame, out: Path, prefix: str = "") -> list[Path]:
    """metric@K curves, bar charts with error bars, and fit time against the first metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    quality = [m for m in table.metrics if "@" in m or m.split("/")[-1] in ("rmse", "mae")] or table.metrics
    fig, ax = plt.subplots(figsize=(1.2 * len(table.rows) + 3, 3.5))
    width = 0.8 / len(quality)
    x = np.arange(len(table.rows))
    for i, m in enumerate(quality):
        ax.bar(x + i * width, table.mean[m], width, yerr=table.std[m].fillna(0), capsize=3, label=m)
    ax.set_xticks(x + width * (len(quality) - 1) / 2, table.rows, rotation=30, ha="right")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{prefix}bars.png", dpi=120)
    plt.close(fig)
    made.append(out / f"{prefix}bars.png")

    families = sorted({m.split("@")[0] for m in table.metrics if "@" in m})
    for fam in families:
        ks = sorted({int(c.split("_at_")[1]) for c in runs.columns if c.startswith(metric_key(fam + "@"))})
        if len(ks) < 2:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r in table.rows:
            sel = table.run_ids.loc[table.run_ids["row"] == r, "run_id"]
            sub = runs.set_index("run_id").loc[sel]
            ax.plot(ks, [sub[metric_key(f"{fam}@{k}")].mean() for k in ks], marker="o", label=r)
        ax.set_xlabel("K")
        ax.set_ylabel(fam)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = prefix + fam.replace("/", "_") + "_at_k.png"
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        made.append(out / name)

    if "time/fit_s" in runs.columns:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        m0 = table.metrics[0]
        for r in table.rows:
            sel = table.run_ids.loc[table.run_ids["row"] == r, "run_id"]
            sub = runs.set_index("run_id").loc[sel]
            ax.scatter(sub["time/fit_s"].mean(), table.mean.loc[r, m0], label=r)
        ax.set_xscale("log")
        ax.set_xlabel("fit time (s)")
        ax.set_ylabel(m0)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"{prefix}time_vs_accuracy.png", dpi=120)
        plt.close(fig)
        made.append(out / f"{prefix}time_vs_accuracy.png")
    return made + cost_plots(table, runs, out, prefix)


COST_AXES = {"cost/train_flops": ("training FLOPs", "flops"), "energy/fit_kwh": ("fit energy (kWh)", "energy")}


def cost_plots(
    table: Table, runs: pd.DataFrame, out: Path, prefix: str = "", metric: str = "test/ndcg@20"
) -> list[Path]:
    """Accuracy per cost: ``metric`` (else the table's first metric) against each cost of :data:`COST_AXES` that
    some run logged (``<prefix>flops_vs_accuracy.png``, ``<prefix>energy_vs_accuracy.png``), one labelled point per
    row (means over its runs, log x axis). Rows without the cost (models that are not torch modules have no FLOPs,
    runs without ``costs.energy``) are left out and named under the plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = metric if metric in table.metrics else table.metrics[0]
    made = []
    by_run = runs.set_index("run_id")
    for cost, (xlabel, name) in COST_AXES.items():
        if cost not in runs.columns:
            continue
        points, missing = {}, []
        for r in table.rows:
            sel = table.run_ids.loc[table.run_ids["row"] == r, "run_id"]
            x = pd.to_numeric(by_run.loc[sel, cost], errors="coerce").mean()
            y = table.mean.loc[r, metric]
            if np.isfinite(x) and x > 0 and np.isfinite(y):
                points[r] = (x, y)
            else:
                missing.append(r)
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for k, (r, (x, y)) in enumerate(points.items()):
            ax.scatter(x, y)
            # labels alternate above and below their points, so that neighbours' labels do not overprint
            ax.annotate(r, (x, y), fontsize=7, xytext=(3, 3 if k % 2 == 0 else -9), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(metric)
        if missing:
            fig.text(0.01, 0.01, "no " + name + ": " + ", ".join(missing), fontsize=6, wrap=True)
        fig.tight_layout(rect=(0, 0.05 if missing else 0, 1, 1))
        path = out / f"{prefix}{name}_vs_accuracy.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        made.append(path)
    return made
