"""The ML-100K-MM comparison: runs a fixed list of configurations (protocol x model x modalities x seed)
through :func:`mmbench.pipeline.run`, records each run, and writes Markdown tables.

The list is not a Cartesian product (Pop has no modalities; the seed models use their own encoders), so it
is spelled out here rather than as a Hydra multirun. Runs already recorded are skipped, so an interrupted
sweep resumes. Entries are ordered by priority (every model on seed 0 first).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from mmbench import pipeline
from mmbench.config import CONF_DIR

log = logging.getLogger(__name__)

PROTOCOLS = {"warm": [], "cold": ["split=cold_item", "eval.candidates=target"]}
SEED_ENCODERS = [
    "encoder@encoders.image=seed_cnn",
    "encoders.image.out_dim=null",
    "encoders.image.image_size=32",  # the seed used 224; 32 keeps a CPU epoch ~30 s (64 px: ~2 min)
    "encoder@encoders.text=lstm",
    "encoders.text.max_len=24",
    "trainer.batch_size=256",
    "trainer.max_epochs=10",  # as in the seed's fit(..., epochs=10)
    "trainer.monitor=rmse",  # rating regressors: the kept epoch is the one with the best validation RMSE
]
MODS = {"none": "[]", "text": "[text]", "image": "[image]", "text+image": "[text,image]"}


@dataclass(frozen=True)
class Entry:
    model: str  # table row name
    fusion: str
    modalities: str
    overrides: tuple[str, ...]


def entries() -> list[Entry]:
    """Every configuration of one protocol and seed, most important first."""
    fr = ("model=fusion_rec",)
    out = [
        Entry("pop", "-", "none", ("model=pop",)),
        Entry("random", "-", "none", ("model=random",)),
        Entry("itemknn", "-", "none", ("model=itemknn",)),
        Entry("bpr", "-", "none", ("model=bpr",)),
        Entry("lightgcn", "-", "none", ("model=lightgcn",)),
        Entry("fusion_rec", "-", "none", (*fr, "model.modalities=[]")),
    ]
    for f in ("early", "attention", "late"):
        out.append(
            Entry("fusion_rec", f, "text+image", (*fr, f"fusion@model.fusion={f}", "model.modalities=[text,image]"))
        )
    out += [
        Entry("vbpr", "-", "text+image", ("model=vbpr",)),
        Entry("freedom", "-", "text+image", ("model=freedom",)),
    ]
    for f in ("hybrid", "gated", "graph"):
        out.append(
            Entry("fusion_rec", f, "text+image", (*fr, f"fusion@model.fusion={f}", "model.modalities=[text,image]"))
        )
    for mods in ("text", "image"):
        for f in ("early", "attention", "late"):
            out.append(
                Entry("fusion_rec", f, mods, (*fr, f"fusion@model.fusion={f}", f"model.modalities={MODS[mods]}"))
            )
    out += [
        Entry("seed_cnn_lstm", "concat", "text+image", ("model=seed_cnn_lstm", *SEED_ENCODERS)),
        Entry("seed_cnn_lstm_personal", "concat", "text+image", ("model=seed_cnn_lstm_personal", *SEED_ENCODERS)),
    ]
    return out


def key(protocol: str, e: Entry, seed: int) -> str:
    return f"{protocol}|{e.model}|{e.fusion}|{e.modalities}|{seed}"


def run_grid(
    record: Path,
    seeds: list[int],
    protocols: list[str],
    extra: list[str],
    only: list[str] | None = None,
    budget_s: float | None = None,
) -> None:
    """Run every (seed, protocol, entry) not yet in ``record`` (a JSON-lines file), seed-major."""
    done = set()
    if record.is_file():
        done = {json.loads(line)["key"] for line in record.read_text().splitlines() if line.strip()}
    start = time.perf_counter()
    for seed in seeds:
        for e in entries():
            if only and e.model not in only:
                continue
            for protocol in protocols:
                k = key(protocol, e, seed)
                if k in done:
                    continue
                if budget_s is not None and time.perf_counter() - start > budget_s:
                    log.warning("time budget spent; stopping before %s", k)
                    return
                tags = [
                    f"+tags.protocol={protocol}",
                    f"+tags.modalities='{e.modalities}'",
                    f"+tags.fusion='{e.fusion}'",
                ]
                overrides = ["experiment=mm_ml100k", *PROTOCOLS[protocol], *e.overrides, f"seed={seed}", *tags, *extra]
                with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                    cfg = compose("config", overrides=overrides)
                log.info("run %s", k)
                res = pipeline.run(cfg)
                row = {
                    "key": k,
                    "protocol": protocol,
                    "model": e.model,
                    "fusion": e.fusion,
                    "modalities": e.modalities,
                    "seed": seed,
                    "run_id": res.run_id,
                    "artifact_uri": res.artifact_uri,
                    "split_dir": str(res.split.directory),
                    "split_fingerprint": res.split.fingerprint,
                    "overrides": overrides,
                    "metrics": res.metrics,
                }
                with record.open("a") as f:
                    f.write(json.dumps(row) + "\n")


def sparse_user_ndcg(row: dict, quantile: float = 0.25, metric: str = "ndcg@20") -> float:
    """Mean test ``metric`` over the users in the lowest ``quantile`` of training-event counts."""
    train = pd.read_csv(Path(row["split_dir"]) / "train.tsv", sep="\t")
    counts = train.groupby("user").size()
    per_user = pd.read_csv(Path(urlparse(row["artifact_uri"]).path) / "metrics" / "per_user_test.tsv", sep="\t")
    n = counts.reindex(per_user["user"]).fillna(0).to_numpy()
    sparse = n <= np.quantile(counts.to_numpy(), quantile)
    return float(per_user.loc[sparse, metric].mean()) if sparse.any() else float("nan")


def mean_rmse(split_dir: str | Path) -> dict[str, float]:
    """Test RMSE of two trivial rating predictors on a saved split: the global training mean, and each
    item's training mean (the global mean for items without training ratings). The reference for
    the rating models' RMSE."""
    d = Path(split_dir)
    train = pd.read_csv(d / "train.tsv", sep="\t")
    test = pd.read_csv(d / "test.tsv", sep="\t")
    mu = train["rating"].mean()
    item = train.groupby("item")["rating"].mean()
    pred_item = test["item"].map(item).fillna(mu).to_numpy()
    r = test["rating"].to_numpy()
    return {
        "global mean": float(np.sqrt(np.mean((r - mu) ** 2))),
        "item mean": float(np.sqrt(np.mean((r - pred_item) ** 2))),
    }


def _fmt(values: pd.Series, digits: int = 4) -> str:
    v = values.dropna().to_numpy(float)
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.{digits}f} (n=1)"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def load_rows(record: Path) -> pd.DataFrame:
    rows = []
    seen: set[str] = set()
    for line in record.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r["key"] in seen:  # a run recorded twice (concatenated records): keep the first
            continue
        seen.add(r["key"])
        m = r["metrics"]
        rows.append(
            {
                "protocol": r["protocol"],
                "model": r["model"],
                "fusion": r["fusion"],
                "modalities": r["modalities"],
                "seed": r["seed"],
                "split": r["split_fingerprint"][:12],
                "split_dir": r["split_dir"],
                "recall@20": m.get("test/recall@20"),
                "ndcg@20": m.get("test/ndcg@20"),
                "val ndcg@20": m.get("val/ndcg@20"),
                "rmse": m.get("test/rmse"),
                "sparse ndcg@20": sparse_user_ndcg(r),
                "fit s": m.get("time/fit_s"),
                "test eval s": m.get("time/eval_test_s"),
                "params": m.get("model/n_params"),
                "epochs": m.get("fit/epochs"),
                **{k: v for k, v in m.items() if k.startswith("fusion/")},
            }
        )
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame) -> str:
    """Markdown: one table per protocol (mean ± std over seeds), then modality contributions."""
    out = []
    group = ["model", "fusion", "modalities"]
    for protocol in ("warm", "cold"):
        d = df[df.protocol == protocol]
        if d.empty:
            continue
        out.append(f"### {protocol} protocol (split {', '.join(sorted(d.split.unique()))})\n")
        cols = ["recall@20", "ndcg@20", "sparse ndcg@20", "rmse", "fit s", "test eval s", "params", "seeds"]
        out.append("| model | fusion | modalities | " + " | ".join(cols) + " |")
        out.append("|" + "---|" * (3 + len(cols)))
        for (m, f, mods), g in d.groupby(group, sort=False):
            cells = [
                _fmt(g["recall@20"]),
                _fmt(g["ndcg@20"]),
                _fmt(g["sparse ndcg@20"]),
                _fmt(g["rmse"]) if g["rmse"].notna().any() else "-",
                f"{g['fit s'].mean():.0f}",
                f"{g['test eval s'].mean():.2f}",
                "-" if g["params"].isna().all() else f"{g['params'].mean():,.0f}",
                ",".join(str(s) for s in sorted(g.seed)),
            ]
            out.append(f"| {m} | {f} | {mods} | " + " | ".join(cells) + " |")
        out.append("")
        ref = mean_rmse(d["split_dir"].iloc[0])
        out.append(
            f"Rating reference on this split: test RMSE of the global training mean {ref['global mean']:.4f}, "
            f"of each item's training mean {ref['item mean']:.4f}.\n"
        )
        fr = d[d.model == "fusion_rec"]
        none = fr[fr.modalities == "none"]["ndcg@20"].mean()
        if not np.isnan(none):
            out.append(
                f"Per-modality contribution ({protocol}): test NDCG@20 of fusion_rec minus fusion_rec "
                f"without modalities ({none:.4f}), by fusion\n"
            )
            out.append("| fusion | text | image | text+image |")
            out.append("|---|---|---|---|")
            for f, g in fr[fr.fusion != "-"].groupby("fusion", sort=False):
                cells = []
                for mods in ("text", "image", "text+image"):
                    v = g[g.modalities == mods]["ndcg@20"]
                    cells.append("-" if v.empty else f"{v.mean() - none:+.4f}")
                out.append(f"| {f} | " + " | ".join(cells) + " |")
            out.append("")
        att = [c for c in d.columns if c.startswith("fusion/attention_")]
        a = d[(d.fusion == "attention")].dropna(subset=att) if att else d.iloc[:0]
        if not a.empty:
            out.append(f"Mean attention weight per source ({protocol}, fusion_rec attention, over all items)\n")
            out.append("| modalities | " + " | ".join(c.removeprefix("fusion/attention_") for c in att) + " |")
            out.append("|---|" + "---|" * len(att))
            for mods, g in a.groupby("modalities", sort=False):
                out.append(
                    f"| {mods} | " + " | ".join("-" if g[c].isna().all() else f"{g[c].mean():.3f}" for c in att) + " |"
                )
            out.append("")
    return "\n".join(out)
