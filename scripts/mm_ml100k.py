"""The ML-100K-MM comparison: run its grid (resumable from MLflow) and write results/mm_ml100k/tables.md.

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_ml100k.py --seeds 0 1 2
    MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_ml100k.py --tables-only

Each grid entry is ``experiment=mm_ml100k`` (conf/experiment/mm_ml100k.yaml) plus a protocol's and an entry's
overrides, run through :func:`mmbench.pipeline.run` into the MLflow experiment ``mm_ml100k``. The list is not a
Cartesian product (Pop has no modalities; the seed models use their own encoders), so it is spelled out here
rather than as a Hydra multirun. Every run is tagged ``protocol``, ``model``, ``fusion``, ``modalities`` and
``seed``; an entry with a FINISHED run in the store ($MLFLOW_TRACKING_URI, else
``sqlite:///$MMBENCH_WORK_DIR/mlflow.db``; ``--tracking-uri`` sets it for runs and tables) is skipped, so an
interrupted sweep resumes. Entries are ordered by priority (every model on seed 0 first). The tables are
built from those runs with :mod:`mmbench.reporting`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from mmbench import pipeline
from mmbench.config import compose
from mmbench.evaluation.metrics import metric_key
from mmbench.reporting.aggregation import SEEDS, Contribution, Table, build_tables, has_row, in_row_order
from mmbench.reporting.rendering import to_markdown, write
from mmbench.reporting.runs import TableError, finished_keys, load_runs

log = logging.getLogger(__name__)

EXPERIMENT = "mm_ml100k"
PROTOCOLS = {"warm": [], "cold": ["split=cold_item", "eval.candidates=target"], "cold_user": ["split=cold_user"]}
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
    protocols: tuple[str, ...] = ("warm", "cold")  # where the entry runs


USERS = ("+encoder@user_encoders.demographics=demographics",)  # age, gender, occupation
NO_USER_ID = (*USERS, "model.user_id_embedding=false")
ALL = tuple(PROTOCOLS)


def entries() -> list[Entry]:
    """Every configuration of one protocol and seed, most important first."""
    fr = ("model=fusion_rec",)
    out = [
        Entry("pop", "-", "none", ("model=pop",), ALL),
        Entry("random", "-", "none", ("model=random",), ALL),
        Entry("itemknn", "-", "none", ("model=itemknn",)),
        Entry("bpr", "-", "none", ("model=bpr",), ALL),
        Entry("lightgcn", "-", "none", ("model=lightgcn",)),
        Entry("fusion_rec", "-", "none", (*fr, "model.modalities=[]"), ALL),
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
        # user-side features: id embedding + projected demographics; without the id, for users never seen
        Entry("fusion_rec", "-", "user demographics", (*fr, "model.modalities=[]", *USERS), ("warm", "cold_user")),
        Entry(
            "fusion_rec",
            "-",
            "user demographics, no user id",
            (*fr, "model.modalities=[]", *NO_USER_ID),
            ("cold_user",),
        ),
        Entry(
            "fusion_rec",
            "early",
            "text+image, user demographics, no user id",
            (*fr, "fusion@model.fusion=early", "model.modalities=[text,image]", *NO_USER_ID),
            ("cold_user",),
        ),
    ]
    return out


def key(protocol: str, e: Entry, seed: int) -> tuple[str, str, str, str, str]:
    """What identifies a run of the grid: its tags protocol, model, fusion, modalities, seed."""
    return (protocol, e.model, e.fusion, e.modalities, str(seed))


def compose_run(overrides: list[str]) -> DictConfig:
    """The config of one grid run: ``experiment=mm_ml100k`` plus ``overrides``."""
    return compose([f"experiment={EXPERIMENT}", *overrides])


def tracking_uri(extra: Sequence[str] = ()) -> str:
    """The MLflow store the grid's runs use with these overrides ($MLFLOW_TRACKING_URI, else the work dir's)."""
    return str(compose_run(list(extra)).logger.tracking_uri)


def load(uri: str) -> pd.DataFrame:
    """The finished runs of the experiment (:func:`~mmbench.reporting.runs.load_runs`), with the tags of runs made
    before the grid passed ``model`` and before command-line tags won over derived ones read as the grid
    names them: the model as the class name in lower case (``fusionrec`` for ``fusion_rec``), and fusion_rec's
    default fusion on runs without modalities (where the fusion is unused: ``-``)."""
    runs = load_runs(uri, EXPERIMENT)
    if "tags.model" in runs.columns:
        runs["tags.model"] = runs["tags.model"].replace({e.model.replace("_", ""): e.model for e in entries()})
    if {"tags.modalities", "tags.fusion"} <= set(runs.columns):
        runs.loc[runs["tags.modalities"] == "none", "tags.fusion"] = "-"
    return runs


def finished(uri: str) -> set[tuple[str, ...]]:
    """The grid keys that already have a FINISHED run in the store."""
    try:
        runs = load(uri)
    except TableError:  # no experiment or no finished run yet
        return set()
    return finished_keys(runs, ["protocol", "model", "fusion", "modalities", "seed"])


def run_grid(
    seeds: list[int],
    protocols: list[str],
    extra: list[str],
    only: list[str] | None = None,
    budget_s: float | None = None,
) -> None:
    """Run every (seed, protocol, entry) without a FINISHED run in the store, seed-major."""
    done = finished(tracking_uri(extra))
    start = time.perf_counter()
    for seed in seeds:
        for e in entries():
            if only and e.model not in only:
                continue
            for protocol in protocols:
                if protocol not in e.protocols:
                    continue
                k = key(protocol, e, seed)
                if k in done:
                    continue
                if budget_s is not None and time.perf_counter() - start > budget_s:
                    log.warning("time budget spent; stopping before %s", k)
                    return
                tags = [
                    f"+tags.model={e.model}",  # the pipeline's own is the class name outside a Hydra run
                    f"+tags.protocol={protocol}",
                    f"+tags.modalities='{e.modalities}'",
                    f"+tags.fusion='{e.fusion}'",
                ]
                log.info("run %s", " | ".join(k))
                pipeline.run(compose_run([*PROTOCOLS[protocol], *e.overrides, f"seed={seed}", *tags, *extra]))


ROWS = ("model", "fusion", "modalities")
METRICS = ("test/recall@20", "test/ndcg@20", "test/sparse/ndcg@20", "test/rmse")  # rmse: rating models only
COSTS = ("time/fit_s", "time/eval_test_s", "model/n_params", SEEDS)
BASELINE = "fusion_rec / - / none"  # BPR-MF: the no-content counterpart of every fusion_rec row
CONTRIBUTION = Contribution("test/ndcg@20", "fusion", "modalities", ("text", "image", "text+image"))
MEANS = ("fusion/attention_", "fusion/weight_", "fusion/gate_")
INTRO = f"""Test metrics of the runs of the MLflow experiment `{EXPERIMENT}`, one table per protocol (tag `protocol`),
rows by the tags model / fusion / modalities. sparse = the users with at most the `eval.sparse_quantile` (0.25)
quantile of training events. Warm protocol: per-user random 80/10/10 split. Cold protocol: 10%/10% of items held
out for val/test, each user's held-out items ranked among the held-out items (`eval.candidates=target`).
Cold-user protocol (`split=cold_user`): 10%/10% of users held out entirely for val/test, ranked over the whole
catalogue; only user features (`user_encoders`: age, gender, occupation) describe them.
Significance tests are against `{BASELINE}` (fusion_rec without modalities, i.e. BPR-MF: the no-content
counterpart of every fusion_rec row); the contribution tables subtract its NDCG@20."""


def build(runs: pd.DataFrame) -> dict[str, Table]:
    """The per-protocol tables of the grid's runs (``test/rmse`` only if some run logs it)."""
    metrics = [m for m in METRICS if m != "test/rmse" or metric_key(m) in runs.columns]
    runs = in_row_order(runs, ROWS, [" / ".join((e.model, e.fusion, e.modalities)) for e in entries()])
    has_base = has_row(runs, ROWS, BASELINE)
    if not has_base:
        log.warning("no %s runs: tables without significance tests and contributions", BASELINE)
    return build_tables(
        runs,
        "protocol",
        rows=ROWS,
        metrics=metrics,
        baseline=BASELINE if has_base else None,
        costs=COSTS,
        contribution=CONTRIBUTION if has_base else None,
        means=MEANS,
        rating_ref=True,
    )


def write_tables(uri: str, out: Path, command: str) -> dict[str, Table]:
    """Build the tables from the store at ``uri`` and write ``tables.md``, ``runs.tsv``, ``table.tex``,
    ``table.csv`` into ``out``."""
    runs = load(uri)
    built = build(runs)
    write(built, runs, out, command, make_plots=False, markdown="tables.md", intro=INTRO)
    return built


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--protocols", nargs="+", default=["warm", "cold", "cold_user"])
    ap.add_argument("--only", nargs="*", help="model names to run (default: all)")
    ap.add_argument("--tracking-uri", default=None, help="MLflow store (default: the one the runs use)")
    ap.add_argument("--budget-min", type=float, default=None, help="stop starting runs after this many minutes")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results" / "mm_ml100k"))
    ap.add_argument("extra", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    extra = ["trainer.enable_progress_bar=false", *args.extra]
    if args.tracking_uri:
        extra.append(f"logger.tracking_uri='{args.tracking_uri}'")
    if not args.tables_only:
        budget = None if args.budget_min is None else args.budget_min * 60
        run_grid(args.seeds, args.protocols, extra, args.only, budget)
    uri = tracking_uri(extra)
    command = shlex.join(["python", "scripts/mm_ml100k.py", "--tables-only", "--tracking-uri", uri, "--out", args.out])
    built = write_tables(uri, Path(args.out), command)
    for t in built.values():
        print(to_markdown(t))


if __name__ == "__main__":
    main()
