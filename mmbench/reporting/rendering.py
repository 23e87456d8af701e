"""Rendering: a :class:`~mmbench.reporting.aggregation.Table` as Markdown, LaTeX (booktabs) and CSV, and the
results page writer (tables, the command that regenerates them, provenance, runs used, plots).

The best value of each metric column is bold and the second underlined; ``†`` marks a significant difference
from the baseline row (Holm-corrected p below alpha); NaN cells print as –.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmbench.pipeline import git_commit
from mmbench.reporting.aggregation import SEEDS, Section, Table
from mmbench.reporting.plots import plots

SIG_MARK = "†"


def section_markdown(s: Section) -> str:
    """A section: its caption, then its frame as a Markdown table."""
    f = s.frame
    lines = [s.caption, "", "| " + " | ".join([f.index.name or "", *map(str, f.columns)]) + " |"]
    lines.append("|" + "---|" * (len(f.columns) + 1))
    for idx, row in f.iterrows():
        lines.append("| " + " | ".join([str(idx), *(_num(v, s.fmt) for v in row)]) + " |")
    return "\n".join(lines)


def _num(v: Any, fmt: str) -> str:
    return f"{v:{fmt}}" if v is not None and np.isfinite(v) else "–"


def _cost(v: float) -> str:
    """Counts up to a million with thousands separators, FLOPs and other large counts as ``1.23e+09``, tiny values
    (energy in kWh) with three significant digits, the rest with two decimals."""
    if not np.isfinite(v):
        return "–"
    if abs(v) >= 1e6:
        return f"{v:.3g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if 0 < abs(v) < 0.01 else f"{v:.2f}"


def cell(t: Table, row: str, metric: str, fmt: str, bold: tuple[str, str], under: tuple[str, str]) -> str:
    """``mean ± std`` (no ± for one run), marked best / second best and significant."""
    m, s, n = t.mean.loc[row, metric], t.std.loc[row, metric], t.n[row]
    if not np.isfinite(m):
        return "–"
    text = f"{m:{fmt}}" + (f" ± {s:{fmt}}" if n > 1 and np.isfinite(s) else "")
    rank = t.ranks(metric).get(row)
    if rank == 1:
        text = bold[0] + text + bold[1]
    elif rank == 2:
        text = under[0] + text + under[1]
    if t.significant(row, metric):
        text += SIG_MARK
    return text


def cost_cell(t: Table, row: str, cost: str) -> str:
    """A cost mean, or the row's seeds."""
    if cost == SEEDS:
        seeds = list(t.seeds[row]) if t.seeds is not None else []
        return ",".join(map(str, seeds)) + (" (n=1)" if len(seeds) == 1 else "")
    return _cost(t.mean.loc[row, cost])


def _cells(t: Table, row: str, fmt: str, bold: tuple[str, str], under: tuple[str, str]) -> list[str]:
    return [
        *t.row_tags.loc[row].tolist(),
        *(cell(t, row, m, fmt, bold, under) for m in t.metrics),
        *(cost_cell(t, row, c) for c in t.costs),
    ]


def footnote(t: Table) -> str:
    """What the cells mean: statistics, ranking, split, and the tests."""
    if t.seeds is not None:
        parts = ["Mean ± sample standard deviation over seeds (column seeds; n=1: one run, no ±);"]
    else:
        parts = [
            f"Mean ± sample standard deviation over runs (n per row: "
            f"{', '.join(f'{r}={int(t.n[r])}' for r in t.rows)});"
        ]
    parts[0] += " best per metric column in bold, second underlined."
    if [c for c in t.costs if c != SEEDS]:
        parts.append(f"{', '.join(c for c in t.costs if c != SEEDS)}: mean over the row's runs, not ranked.")
    parts.append(f"Split fingerprint {t.split_fingerprint[:16]}.")
    if t.baseline is not None and t.pvalues is not None:
        name = "Wilcoxon signed-rank" if t.test == "wilcoxon" else "paired t-test"
        tested = [m for m in t.metrics if t.pvalues[m].notna().any()]
        parts.append(
            f"Baseline of the tests: {t.baseline}. {SIG_MARK}: differs from it with p < {t.alpha} "
            f"({name} over test users on per-user values averaged over seeds, Holm-Bonferroni corrected across "
            f"the {int(np.isfinite(t.pvalues.to_numpy()).sum())} comparisons of the table; tested: "
            f"{', '.join(tested) or 'none'})."
        )
    return " ".join(parts)


def to_markdown(t: Table, fmt: str = ".4f") -> str:
    """The table, its footnote and its sections as Markdown."""
    head = "| " + " | ".join([*t.row_tags.columns, *t.metrics, *t.costs]) + " |"
    lines = [head, "|" + "---|" * (len(t.row_tags.columns) + len(t.metrics) + len(t.costs))]
    for r in t.rows:
        lines.append("| " + " | ".join(_cells(t, r, fmt, ("**", "**"), ("<u>", "</u>"))) + " |")
    return "\n\n".join(["\n".join(lines), footnote(t), *(section_markdown(s) for s in t.sections)]) + "\n"


def to_latex(t: Table, fmt: str = ".4f") -> str:
    """The table as a booktabs ``tabular``, the footnote as a LaTeX comment."""

    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")

    k = len(t.row_tags.columns)
    lines = [r"\begin{tabular}{" + "l" * k + "r" * (len(t.metrics) + len(t.costs)) + "}", r"\toprule"]
    lines.append(" & ".join(esc(c) for c in [*t.row_tags.columns, *t.metrics, *t.costs]) + r" \\")
    lines.append(r"\midrule")
    for r in t.rows:
        cells = _cells(t, r, fmt, (r"\textbf{", "}"), (r"\underline{", "}"))
        cells = [esc(c) for c in cells[:k]] + [
            c.replace("±", r"$\pm$").replace(SIG_MARK, r"$^\dagger$") for c in cells[k:]
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", "", "% " + footnote(t).replace(SIG_MARK, "dagger")]
    return "\n".join(lines) + "\n"


def to_frame(t: Table) -> pd.DataFrame:
    """One row per table row: row tags, n_runs, seeds, mean / std / Holm p of each metric, cost means (CSV)."""
    out = t.row_tags.copy()
    out.index.name = "row"
    out["n_runs"] = t.n
    if t.seeds is not None:
        out[SEEDS] = t.seeds.map(lambda s: ",".join(map(str, s)))
    for m in t.metrics:
        out[f"{m} mean"] = t.mean[m]
        out[f"{m} std"] = t.std[m]
        if t.pvalues is not None and m in t.pvalues.columns:
            out[f"{m} p_holm"] = t.pvalues[m]
    for c in t.costs:
        if c != SEEDS:
            out[f"{c} mean"] = t.mean[c]
    return out


def provenance(runs: pd.DataFrame) -> str:
    """Date, machine, and the mmbench commits of the runs and of the code writing the page."""
    commits = sorted(set(runs["tags.git_commit"].dropna().astype(str))) if "tags.git_commit" in runs else []
    return (
        f"Made {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on {_machine()} by mmbench {_commit()}; "
        f"runs from mmbench git {', '.join(_short(c) for c in commits) or 'unknown'}."
    )


def page(title: str, body: Sequence[str], command: str, runs: pd.DataFrame, footer: Sequence[str] = ()) -> str:
    """A results page: title, body lines, the command that regenerates it, provenance, then ``footer``
    paragraphs (files, notes)."""
    lines = [f"# {title}", "", *body, "Regenerate with:", "", "```", command, "```", "", provenance(runs)]
    for f in footer:
        if f.strip():
            lines += ["", f.strip()]
    return "\n".join(lines) + "\n"


def write(
    tables: Table | Mapping[str, Table],
    runs: pd.DataFrame,
    out_dir: str | Path,
    command: str,
    make_plots: bool = True,
    markdown: str = "README.md",
    intro: str = "",
) -> Path:
    """Write ``markdown`` (the tables, their sections, ``intro`` above and the command below), ``table.tex``,
    ``table.csv``, ``runs.tsv`` (one row per run used) and plots; several tables
    (:func:`~mmbench.reporting.aggregation.build_tables`) go into the same files, one section each."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"": tables} if isinstance(tables, Table) else dict(tables)
    body = [intro.strip(), ""] if intro else []
    tex, csv, used, figs = [], [], [], []
    for key, t in tables.items():
        head = f"{t.split[0]} {t.split[1]}" if t.split else ""
        if head:
            body += [f"## {head}", ""]
            tex.append(f"% {head}")
        body.append(to_markdown(t))
        tex.append(to_latex(t))
        frame = to_frame(t)
        if t.split:
            frame.insert(0, t.split[0], t.split[1])
        csv.append(frame)
        used.append(t.run_ids)
        if make_plots:
            figs += plots(t, runs, out, f"{key}_" if key else "")
    (out / "table.tex").write_text("\n".join(tex))
    pd.concat(csv).to_csv(out / "table.csv", float_format="%.6g")
    used_runs = pd.concat(used, ignore_index=True)
    used_runs.to_csv(out / "runs.tsv", sep="\t", index=False, float_format="%.6g")
    files = f"Runs used: `runs.tsv` ({len(used_runs)} runs). Also: " + ", ".join(
        f"`{f}`" for f in ["table.tex", "table.csv", *(f.name for f in figs)]
    )
    used = runs[runs["run_id"].isin(used_runs["run_id"])]
    (out / markdown).write_text(page(out.name, body, command, used, [files + "."]))
    return out


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores), Python {platform.python_version()}"


def _short(commit: str) -> str:
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def _commit() -> str:
    return f"git {_short(git_commit())}"
