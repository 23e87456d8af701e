"""Interpretability on ML-100K-MM (README "Interpretability"): which source each test recommendation's score comes
from, for warm and cold items and for sparse and active users, the deletion test, and worked examples.

    MMBENCH_DATA_DIR=/work/shared/data MMBENCH_CACHE_DIR=/tmp/explain/cache MMBENCH_WORK_DIR=/tmp/explain/work \\
        nice -n 10 python scripts/explain_ml100k.py --out results/interpretability_ml100k

Each entry is ``experiment=mm_ml100k`` (EfficientNet-Lite0 posters + all-MiniLM-L6-v2 text, both frozen) with
``explain=default`` (100 test users drawn with seed 0, their top 10, Integrated Gradients with 64 Gauss-Legendre
points where the model is not additive), one seed, on two protocols: ``warm`` (the random 80/10/10 split) and
``cold`` (cold-item split: the test items have no training event, ranked among themselves). A run whose artifacts
are already under ``$MMBENCH_WORK_DIR/explain_ml100k/<protocol>_<entry>/`` is not run again, so the tables and the
figure can be rebuilt without training. Writes ``tables.md``, ``runs.tsv`` (each run's ``explain/...`` and
test metrics), ``examples.png`` (worked examples as bars and text: no poster, no image derived from one).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts

from mmbench import pipeline
from mmbench.config import compose

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = logging.getLogger(__name__)

# name -> overrides; every entry reads both modalities. fusion_rec names them in the order of the mm_ml100k grid
# (scripts/mm_grid.py), which fixes its parameters' creation order: the runs repeat the grid's seed-0 runs
ENTRIES = {
    "fusion_rec late": ["model=fusion_rec", "fusion@model.fusion=late", "model.modalities=[text,image]"],
    "fusion_rec attention": ["model=fusion_rec", "fusion@model.fusion=attention", "model.modalities=[text,image]"],
    "vbpr": ["model=vbpr"],
    "freedom": ["model=freedom"],
}
PROTOCOLS = {"warm": [], "cold": ["split=cold_item", "eval.candidates=target"]}
COMMON = ["experiment=mm_ml100k", "explain=default", "seed=0", "+tags.study=interpretability"]
ARTIFACTS = ("explanations/test_topk.tsv", "explanations/test_evidence.tsv", "metrics/per_user_test.tsv")


def run_all(work: Path, tracking_uri: str) -> pd.DataFrame:
    """Every entry on every protocol (skipped when its artifacts are there); one row of metrics per run."""
    rows = []
    for protocol, p_over in PROTOCOLS.items():
        for entry, e_over in ENTRIES.items():
            folder = work / f"{protocol}_{entry.replace(' ', '_')}"
            metrics_file = folder / "metrics.tsv"
            if not metrics_file.is_file():
                overrides = [*COMMON, *e_over, *p_over, f"logger.tracking_uri={tracking_uri}"]
                log.info("running %s / %s: %s", protocol, entry, " ".join(overrides))
                t = time.perf_counter()
                res = pipeline.run(compose(overrides))
                folder.mkdir(parents=True, exist_ok=True)
                for a in ARTIFACTS:
                    shutil.copy(
                        download_artifacts(run_id=res.run_id, artifact_path=a, tracking_uri=tracking_uri), folder
                    )
                m = {k: v for k, v in res.metrics.items() if k.startswith(("explain/", "test/", "time/"))}
                m["wall_s"] = time.perf_counter() - t
                pd.Series(m).to_csv(metrics_file, sep="\t", header=False)
            m = pd.read_csv(metrics_file, sep="\t", header=None, index_col=0).iloc[:, 0]
            rows.append({"protocol": protocol, "entry": entry, **m.to_dict()})
    return pd.DataFrame(rows)


def load_pairs(work: Path) -> pd.DataFrame:
    """Every explained recommendation of every run, with its user's ``sparse`` flag (the evaluator's)."""
    frames = []
    for protocol in PROTOCOLS:
        for entry in ENTRIES:
            folder = work / f"{protocol}_{entry.replace(' ', '_')}"
            f = pd.read_csv(folder / "test_topk.tsv", sep="\t")
            sparse = pd.read_csv(folder / "per_user_test.tsv", sep="\t")[["user", "sparse"]]
            frames.append(f.merge(sparse, on="user", how="left").assign(protocol=protocol, entry=entry))
    return pd.concat(frames, ignore_index=True)


SOURCES = ("id", "image", "text")


def shares(pairs: pd.DataFrame) -> pd.DataFrame:
    c = pairs[[f"contribution_{s}" for s in SOURCES]].abs().to_numpy()
    return pd.DataFrame(c / np.maximum(c.sum(1, keepdims=True), 1e-12), columns=[f"share_{s}" for s in SOURCES])


def contribution_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Mean share of |contribution| and mean contribution per source, by entry, items (warm / cold) and users."""
    df = pd.concat([pairs.reset_index(drop=True), shares(pairs)], axis=1)
    df["users"] = np.where(df["sparse"] == 1, "sparse", "active")
    cols = [f"share_{s}" for s in SOURCES] + [f"contribution_{s}" for s in SOURCES] + ["baseline", "score"]
    g = df.groupby(["entry", "protocol", "users"], sort=False)
    out = g[cols].mean()
    out.insert(0, "pairs", g.size())
    return out.reset_index().rename(columns={"protocol": "items"})


def deletion_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per run: |score change| when the top-|attributed| source is zeroed vs a uniformly random one (expectation),
    over all sources and over the two modalities, the share of pairs where the top one changes the score more than
    the random expectation, and the mean |completeness gap|."""
    rows = []
    for (entry, protocol), f in pairs.groupby(["entry", "protocol"], sort=False):
        c = f[[f"contribution_{s}" for s in SOURCES]].abs().to_numpy()
        d = f[[f"deletion_{s}" for s in SOURCES]].abs().to_numpy()
        row = {"entry": entry, "items": protocol, "method": f["method"].iloc[0], "pairs": len(f)}
        for name, cols in (("all", [0, 1, 2]), ("modalities", [1, 2])):
            top = d[np.arange(len(d)), np.asarray(cols)[np.argmax(c[:, cols], 1)]]
            rnd = d[:, cols].mean(1)
            row[f"{name}: top"], row[f"{name}: random"] = top.mean(), rnd.mean()
            row[f"{name}: top wins"] = float(np.mean(top > rnd + 1e-9))
        row["|gap|"] = f"{f['completeness_gap'].abs().mean():.1e}"
        rows.append(row)
    return pd.DataFrame(rows)


def attention_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Attention fusion: the model's own weight per source beside its share of the attributions."""
    f = pairs[pairs["entry"] == "fusion_rec attention"].reset_index(drop=True)
    df = pd.concat([f, shares(f)], axis=1)
    cols = [f"weight_{s}" for s in SOURCES] + [f"share_{s}" for s in SOURCES]
    return df.groupby("protocol", sort=False)[cols].mean().reset_index().rename(columns={"protocol": "items"})


def markdown(df: pd.DataFrame, digits: int = 3) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    lines = [head, "|" + "---|" * len(df.columns)]
    for _, r in df.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def examples(pairs: pd.DataFrame, work: Path, titles: pd.Series, entry: str) -> list[dict]:
    """Four rank-1 recommendations of ``entry``: warm / cold items x active / sparse users, in each group the lowest
    user id whose item is not already shown, with the two nearest training items by text and by image."""
    out, shown = [], set()
    for protocol in PROTOCOLS:
        ev = pd.read_csv(work / f"{protocol}_{entry.replace(' ', '_')}" / "test_evidence.tsv", sep="\t")
        for sparse in (0, 1):
            f = pairs[(pairs["entry"] == entry) & (pairs["protocol"] == protocol) & (pairs["sparse"] == sparse)]
            f = f[(f["rank"] == 1) & ~f["item"].isin(shown)].sort_values("user")
            if not len(f):
                continue
            r = f.iloc[0]
            shown.add(r["item"])
            e = ev[(ev["user"] == r["user"]) & (ev["rank"] == 1) & (ev["evidence_rank"] <= 2)]
            evidence = {
                m: [f"{titles[i]} ({s:.2f})" for i, s in zip(g["train_item"], g["similarity"])]
                for m, g in e.groupby("modality")
            }
            out.append({"protocol": protocol, "sparse": sparse, "row": r, "evidence": evidence})
    return out


def plot_examples(chosen: list[dict], titles: pd.Series, entry: str, path: Path) -> None:
    """Per example: bars of the baseline and each source's contribution (with the model's weight where it has one)
    and, beside them, the user's nearest training items in each modality. Text and bars only: no poster."""
    fig, axes = plt.subplots(len(chosen), 2, figsize=(11, 2.3 * len(chosen)), gridspec_kw={"width_ratios": [1, 1.1]})
    for (ax, side), ex in zip(np.atleast_2d(axes), chosen):
        r = ex["row"]
        names = ["baseline", *(f"{s} (weight {r[f'weight_{s}']:.2f})" if f"weight_{s}" in r else s for s in SOURCES)]
        vals = [r["baseline"], *(r[f"contribution_{s}"] for s in SOURCES)]
        ax.barh(names, vals, color=["#999999", "#4c72b0", "#dd8452", "#55a868"])
        ax.axvline(0, color="black", lw=0.8)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
        ax.set_xlabel("contribution to the score", fontsize=8)
        who = "sparse" if ex["sparse"] else "active"
        ax.set_title(
            f"{ex['protocol']} item, {who} user {r['user']} ({r['user_train_events']} training events)\n"
            f"#1 {titles[r['item']]} ({r['item_train_events']} training events), score {r['score']:.2f}",
            fontsize=9,
        )
        lines = []
        for m, v in sorted(ex["evidence"].items()):
            lines += [f"nearest in the user's history by {m}:", *(f"   {t}" for t in v)]
        side.text(0.0, 0.5, "\n".join(lines), fontsize=8, va="center", family="monospace")
        side.axis("off")
    fig.suptitle(f"{entry} on ML-100K-MM: why the #1 item ({chosen[0]['row']['method']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/interpretability_ml100k"))
    ap.add_argument("--example-entry", default="fusion_rec attention", choices=list(ENTRIES))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if "MMBENCH_WORK_DIR" not in os.environ:
        raise SystemExit("set MMBENCH_WORK_DIR (the split store, the MLflow store and the runs' artifacts go there)")
    root = Path(os.environ["MMBENCH_WORK_DIR"])
    work = root / "explain_ml100k"
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
    runs = run_all(work, tracking_uri)
    pairs = load_pairs(work)
    ds, _ = pipeline.load_data(compose(["experiment=mm_ml100k"]))
    titles = pd.Series(ds.item_table["title"].to_numpy(), index=ds.item_ids)
    args.out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out / "runs.tsv", sep="\t", index=False, float_format="%.6g")
    chosen = examples(pairs, work, titles, args.example_entry)
    plot_examples(chosen, titles, args.example_entry, args.out / "examples.png")
    text = [
        "## Mean contribution per source: warm vs cold items, active vs sparse users",
        "",
        markdown(contribution_table(pairs)),
        "",
        "## Deletion test",
        "",
        markdown(deletion_table(pairs), 4),
        "",
        "## Attention weights beside the attributions (fusion_rec attention)",
        "",
        markdown(attention_table(pairs)),
        "",
        "## Worked examples (examples.png)",
        "",
    ]
    for ex in chosen:
        r = ex["row"]
        parts = ", ".join(f"{s} {r[f'contribution_{s}']:+.3f}" for s in SOURCES)
        text.append(
            f"- {ex['protocol']} items, {'sparse' if ex['sparse'] else 'active'} user {r['user']}: #1 "
            f"{titles[r['item']]}, score {r['score']:.3f} = baseline {r['baseline']:+.3f} + {parts}"
            + "".join(f"; nearest in {m}: {', '.join(v)}" for m, v in sorted(ex["evidence"].items()))
        )
    (args.out / "tables.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
