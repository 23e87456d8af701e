"""Reproduction tables: a sweep's cross-validated results beside published values, with the gap and a verdict.

:mod:`mmbench.reporting` compares runs on one split; a k-fold reproduction spans one split per fold, so this
callback groups the runs of a sweep by model, checks that every model ran on the same set of folds (split
fingerprints), and writes mean ± std over the folds next to the published numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mmbench.evaluation.metrics import metric_key
from mmbench.reporting.rendering import page
from mmbench.reporting.runs import TableError, load_runs

TIMES = ("time/fit_s", "time/eval_test_s")


def build(
    runs: pd.DataFrame,
    published: Mapping[str, Mapping[str, Any]],
    metrics: tuple[str, ...] = ("rmse", "mae"),
    tolerance: float = 0.005,
) -> pd.DataFrame:
    """One row per published entry (in its order): folds, mean / std per metric and time, published, gap, verdict.

    ``published`` maps a ``model`` tag to ``{label, <metric>: value}``. Runs of a model missing from the sweep,
    get a row marked "not run"; models that ran on different folds raise
    :class:`~mmbench.reporting.runs.TableError`.
    """
    if "tags.model" not in runs.columns or "tags.split_fingerprint" not in runs.columns:
        raise TableError("runs lack the model / split_fingerprint tags")
    folds = runs.groupby("tags.model")["tags.split_fingerprint"].apply(lambda s: tuple(sorted(s)))
    ran = [m for m in published if m in folds.index]
    if not ran:
        raise TableError(f"none of {list(published)} ran in the sweep; models found: {sorted(folds.index)}")
    for m in ran:
        if folds[m] != folds[ran[0]]:
            raise TableError(f"model {m!r} ran on other folds than {ran[0]!r}: not comparable")
    rows = []
    for model, pub in published.items():
        r = runs[runs["tags.model"] == model]
        row: dict[str, Any] = {"algorithm": pub.get("label", model), "model": model, "folds": len(r)}
        if r.empty:
            rows.append({**row, "within_tolerance": None})
            continue
        for m in metrics:
            v = r[metric_key(f"test/{m}")].astype(float)
            row[f"{m}_mean"], row[f"{m}_std"] = v.mean(), v.std(ddof=1)
            row[f"{m}_published"] = float(pub[m])
            row[f"{m}_diff"] = row[f"{m}_mean"] - row[f"{m}_published"]
        for t in TIMES:
            v = r[t].astype(float) if t in r.columns else pd.Series([np.nan])
            row[f"{t.split('/')[1]}_mean"], row[f"{t.split('/')[1]}_std"] = v.mean(), v.std(ddof=1)
        row["within_tolerance"] = bool(all(abs(row[f"{m}_diff"]) <= tolerance + 1e-12 for m in metrics))
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, metrics: tuple[str, ...] = ("rmse", "mae"), tolerance: float = 0.005) -> str:
    head = ["Algorithm"]
    for m in metrics:
        head += [f"{m.upper()} mmbench", f"{m.upper()} published", "Δ"]
    head += ["fit s / fold", "test s / fold", f"|Δ| ≤ {tolerance}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        if r["folds"] == 0:
            lines.append("| " + " | ".join([r["algorithm"]] + ["–"] * (len(head) - 2) + ["not run"]) + " |")
            continue
        cells = [r["algorithm"]]
        for m in metrics:
            cells += [
                f"{r[f'{m}_mean']:.4f} ± {r[f'{m}_std']:.4f}",
                f"{r[f'{m}_published']:.3f}",
                f"{r[f'{m}_diff']:+.4f}",
            ]
        cells += [
            f"{r['fit_s_mean']:.2f} ± {r['fit_s_std']:.2f}",
            f"{r['eval_test_s_mean']:.2f} ± {r['eval_test_s_std']:.2f}",
            "yes" if r["within_tolerance"] else "**no**",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


class PublishedTableCallback(Callback):
    """Hydra callback: at the end of a multirun, put this sweep's runs (by ``sweep_id``) beside published values.

    Writes ``<work dir>/<results_dir>/<name>/README.md`` (Markdown table, command, machine, date) and
    ``table.csv``. ``published`` maps each ``model`` tag to its label and published metric values.
    """

    def __init__(
        self,
        name: str,
        published: Mapping[str, Mapping[str, Any]],
        metrics: list[str] | None = None,
        tolerance: float = 0.005,
        source: str = "",
        results_dir: str = "results",
        notes: str = "",
    ) -> None:
        self.name, self.tolerance, self.source, self.results_dir, self.notes = (
            name,
            tolerance,
            source,
            results_dir,
            notes,
        )
        self.published = OmegaConf.to_container(published) if isinstance(published, DictConfig) else dict(published)
        self.metrics = tuple(metrics or ("rmse", "mae"))

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_id = str(Path(config.hydra.sweep.dir).resolve())
        runs = load_runs(config.logger.tracking_uri, config.experiment_name, f"tags.sweep_id = '{sweep_id}'")
        table = build(runs, self.published, self.metrics, self.tolerance)
        command = " ".join(["mmbench", *config.hydra.overrides.task])
        out = write(
            table,
            Path(config.paths.work_dir) / self.results_dir / self.name,
            command,
            self.source,
            self.notes,
            self.metrics,
            self.tolerance,
            sweep_id,
            runs,
        )
        print(markdown(table, self.metrics, self.tolerance))
        print(f"table written to {out}")


def write(
    table: pd.DataFrame,
    out: Path,
    command: str,
    source: str,
    notes: str,
    metrics: tuple[str, ...],
    tolerance: float,
    sweep_id: str,
    runs: pd.DataFrame,
) -> Path:
    """``README.md`` (through :func:`mmbench.reporting.rendering.page`: command, machine, date, commits)
    and ``table.csv``."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "table.csv", index=False, float_format="%.6g")
    n_ok = int((table["within_tolerance"] == True).sum())  # noqa: E712 (None: not run)
    body = [
        f"mmbench's mean ± sample std over the folds beside the published values{f' ({source})' if source else ''}; "
        f"Δ = mmbench − published. {n_ok} of {len(table)} rows within {tolerance} on every metric. Times are "
        "mmbench's per fold: `time/fit_s` and `time/eval_test_s` (the test evaluation: RMSE / MAE, plus full "
        "top-N ranking where the runs' `eval.metrics` asked for ranking metrics).",
        "",
        markdown(table, metrics, tolerance),
    ]
    footer = [f"Sweep: `{Path(sweep_id).name}`. Data: `table.csv`.", notes]
    (out / "README.md").write_text(page(out.name, body, command, runs, footer))
    return out
