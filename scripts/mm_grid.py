"""The multimodal comparison grid of ML-100K-MM or ML-1M-MM: run it (resumable from MLflow) and write its tables.

    MMBENCH_DATA_DIR=../shared/data MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_grid.py --experiment mm_ml100k
    MMBENCH_WORK_DIR=/tmp/mmwork python scripts/mm_grid.py --experiment mm_ml1m --tables-only

Each grid entry is ``experiment=<experiment>`` (conf/experiment/mm_ml100k.yaml or mm_ml1m.yaml) plus a protocol's
and an entry's overrides, run through :func:`mmbench.pipeline.run` into the MLflow experiment that config names
(``experiment_name``: ``mm_ml100k_lite0``, ``mm_ml1m_lite0``; the first ML-100K grid, with random ResNet-18 image
weights, used ``mm_ml100k``). The list is not a Cartesian product (Pop has no modalities; the seed models use their
own encoders), so it is spelled out here rather than as a Hydra multirun. Every run is tagged ``protocol``,
``model``, ``fusion``, ``modalities`` and ``seed``; an entry with a FINISHED run in the store ($MLFLOW_TRACKING_URI,
else ``sqlite:///$MMBENCH_WORK_DIR/mlflow.db``; ``--tracking-uri`` sets it for runs and tables) whose image weights
(tag ``encoder.image.weights``) are the experiment's is skipped, so an interrupted sweep resumes; runs with other
image weights are neither resumed from nor tabulated (runs whose image encoder is trained in the run, the
seed models' ``SeedCNN``, tag ``encoder.image.weights=trained`` and count for any weights). Entries are ordered
by priority. The tables are built from those runs with :mod:`mmbench.reporting`.
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
from mmbench.encoders import image as image_encoders
from mmbench.encoders.base import TRAINED, Encoder
from mmbench.evaluation.metrics import metric_key
from mmbench.reporting.aggregation import COMPUTE, SEEDS, Contribution, Table, build_tables, has_row, in_row_order
from mmbench.reporting.plots import cost_plots
from mmbench.reporting.rendering import to_markdown, write
from mmbench.reporting.runs import TableError, finished_keys, load_runs

log = logging.getLogger(__name__)

EXPERIMENTS = ("mm_ml100k", "mm_ml1m")  # conf/experiment/<name>.yaml
# the image encoders learnt inside a run (tag encoder.image = class name): SeedCNN
TRAINABLE_IMAGE = sorted(
    c.__name__ for c in vars(image_encoders).values() if isinstance(c, type) and issubclass(c, Encoder) and c.trainable
)
# sparse: the warm split with 20% of users (seeded) keeping their first 3 training events by time
SPARSE = ["split=sparse_history", "split.k=3", "split.share=0.2", "split.order=time"]
PROTOCOLS = {
    "warm": [],
    "cold": ["split=cold_item", "eval.candidates=target"],
    "cold_user": ["split=cold_user"],
    "sparse": SPARSE,
}
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
ALL = ("warm", "cold", "cold_user")


def entries() -> list[Entry]:
    """Every configuration of one protocol and seed, most important first."""
    fr = ("model=fusion_rec",)
    sp = ("warm", "cold", "sparse")  # the sparse-history protocol: CF against late fusion of each modality, VBPR

    def fusion(f: str, mods: str, protocols: tuple[str, ...] = ("warm", "cold")) -> Entry:
        overrides = (*fr, f"fusion@model.fusion={f}", f"model.modalities={MODS[mods]}")
        return Entry("fusion_rec", f, mods, overrides, protocols)

    out = [
        Entry("random", "-", "none", ("model=random",), (*ALL, "sparse")),
        Entry("pop", "-", "none", ("model=pop",), (*ALL, "sparse")),
        Entry("itemknn", "-", "none", ("model=itemknn",)),
        Entry("ease", "-", "none", ("model=ease",)),
        Entry("bpr", "-", "none", ("model=bpr",), (*ALL, "sparse")),
        Entry("lightgcn", "-", "none", ("model=lightgcn",), sp),
        Entry("fusion_rec", "-", "none", (*fr, "model.modalities=[]"), (*ALL, "sparse")),
    ]
    for mods in ("image", "text", "text+image"):
        out.append(fusion("late", mods, sp))
        out.append(fusion("early", mods))
    out += [
        Entry("vbpr", "-", "text+image", ("model=vbpr",), sp),
        Entry("freedom", "-", "text+image", ("model=freedom",)),
        # the ablation of FREEDOM's modality graph: its user-item part alone (LightGCN with edge pruning)
        Entry("freedom", "-", "none", ("model=freedom", "model.modalities=[]")),
    ]
    out += [fusion(f, "text+image") for f in ("attention", "graph", "hybrid", "gated")]
    out += [fusion("attention", mods) for mods in ("text", "image")]
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


def label(e: Entry) -> str:
    """The entry's table row: ``model / fusion / modalities``."""
    return " / ".join((e.model, e.fusion, e.modalities))


def compose_run(experiment: str, overrides: list[str]) -> DictConfig:
    """The config of one grid run: ``experiment=<experiment>`` plus ``overrides``."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"--experiment {experiment!r}: the grid knows {list(EXPERIMENTS)}")
    return compose([f"experiment={experiment}", *overrides])


def tracking_uri(experiment: str, extra: Sequence[str] = ()) -> str:
    """The MLflow store the grid's runs use with these overrides ($MLFLOW_TRACKING_URI, else the work dir's)."""
    return str(compose_run(experiment, list(extra)).logger.tracking_uri)


def mlflow_experiment(experiment: str) -> str:
    """The MLflow experiment the grid's runs go to (the config's ``experiment_name``)."""
    return str(compose_run(experiment, []).experiment_name)


def image_weights(experiment: str, extra: Sequence[str] = ()) -> str:
    """The tag ``encoder.image.weights`` the experiment's runs carry: pretrained, checkpoint or random."""
    enc = compose_run(experiment, list(extra)).encoders.image
    return "pretrained" if enc.get("pretrained") else "checkpoint" if enc.get("checkpoint_path") else "random"


def image_weights_of(runs: pd.DataFrame) -> pd.Series:
    """Each run's tag ``encoder.image.weights``; runs made before trainable encoders were tagged (the seed models'
    ``SeedCNN``, learnt in the run) read as ``trained``, other untagged runs as missing."""
    col = runs.get("tags.encoder.image.weights", pd.Series(None, index=runs.index, dtype=object))
    trained = runs.get("tags.encoder.image", pd.Series(None, index=runs.index, dtype=object)).isin(TRAINABLE_IMAGE)
    return col.where(col.notna() | ~trained, TRAINED)


def load(uri: str, experiment: str, weights: str | None = None) -> pd.DataFrame:
    """The finished runs of the experiment (:func:`~mmbench.reporting.runs.load_runs`) whose image encoder had
    ``weights`` (tag ``encoder.image.weights``; every run of the grid encodes images, with or without using them) or
    was trained in the run (the seed models: the experiment's frozen weights play no part in them),
    with the tags of runs made before the grid passed ``model`` and before command-line tags won over derived
    ones read as the grid names them: the model as the class name in lower case (``fusionrec`` for
    ``fusion_rec``), and fusion_rec's default fusion on runs without modalities (where the fusion is unused: ``-``)."""
    runs = load_runs(uri, mlflow_experiment(experiment))
    if weights is not None:
        keep = image_weights_of(runs).isin([weights, TRAINED])
        if (~keep).any():
            log.warning("%d runs without encoder.image.weights=%s left out", (~keep).sum(), weights)
        runs = runs[keep].reset_index(drop=True)
        if runs.empty:
            raise TableError(f"no finished runs with encoder.image.weights={weights} in {uri}")
    if "tags.model" in runs.columns:
        runs["tags.model"] = runs["tags.model"].replace({e.model.replace("_", ""): e.model for e in entries()})
    if {"tags.modalities", "tags.fusion"} <= set(runs.columns):
        runs.loc[runs["tags.modalities"] == "none", "tags.fusion"] = "-"
    return runs


def finished(uri: str, experiment: str, weights: str) -> set[tuple[str, ...]]:
    """The grid keys that already have a FINISHED run with these image weights in the store."""
    try:
        runs = load(uri, experiment, weights)
    except TableError:  # no experiment or no finished run yet
        return set()
    return finished_keys(runs, ["protocol", "model", "fusion", "modalities", "seed"])


def run_grid(
    experiment: str,
    seeds: list[int],
    protocols: list[str],
    extra: list[str],
    only: list[str] | None = None,
    budget_s: float | None = None,
) -> None:
    """Run every (seed, protocol, entry) without a FINISHED run in the store, seed-major."""
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"--protocols {sorted(unknown)}: the grid knows {list(PROTOCOLS)}")
    done = finished(tracking_uri(experiment, extra), experiment, image_weights(experiment, extra))
    start = time.perf_counter()
    for seed in seeds:
        for e in entries():
            if only and e.model not in only and label(e) not in only:
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
                overrides = [*PROTOCOLS[protocol], *e.overrides, f"seed={seed}", *tags, *extra]
                pipeline.run(compose_run(experiment, overrides))


ROWS = ("model", "fusion", "modalities")
# rmse: rating models only; truncated: the sparse-history protocol's truncated users
METRICS = ("test/recall@20", "test/ndcg@20", "test/truncated/ndcg@20", "test/sparse/ndcg@20", "test/rmse")
OPTIONAL = ("test/truncated/ndcg@20", "test/rmse")  # in the tables only if some run logs them
COSTS = (COMPUTE, "time/eval_test_s", SEEDS)  # compute: parameters, FLOPs, fit time / peak memory / energy
BASELINE = "fusion_rec / - / none"  # BPR-MF: the no-content counterpart of every fusion_rec row
CONTRIBUTION = Contribution("test/ndcg@20", "fusion", "modalities", ("text", "image", "text+image"))
MEANS = ("fusion/attention_", "fusion/weight_", "fusion/gate_")


def intro(experiment: str, weights: str) -> str:
    name = mlflow_experiment(experiment)
    return f"""Test metrics of the runs of the MLflow experiment `{name}` (`experiment={experiment}`)
with image encoder weights `{weights}` (tag `encoder.image.weights`; runs with other weights are left out), one
table per protocol (tag `protocol`), rows by the tags model / fusion / modalities. sparse = the users with at most
the `eval.sparse_quantile` (0.25) quantile of training events. Warm protocol: per-user random 80/10/10 split.
Cold protocol: 10%/10% of items held out for val/test, each user's held-out items ranked among the held-out items
(`eval.candidates=target`). Cold-user protocol (`split=cold_user`): 10%/10% of users held out entirely for
val/test, ranked over the whole catalogue; only user features (`user_encoders`: age, gender, occupation) describe
them. Sparse-history protocol (`{" ".join(SPARSE)}`):
the warm split, with a seeded 20% of users keeping only
their first 3 training events by time (validation and test unchanged); truncated = those users.
Significance tests are against `{BASELINE}` (fusion_rec without modalities, i.e. BPR-MF: the no-content
counterpart of every fusion_rec row); the contribution tables subtract its NDCG@20."""


def build(runs: pd.DataFrame) -> dict[str, Table]:
    """The per-protocol tables of the grid's runs, in order of appearance; each shows the OPTIONAL metrics only
    if some run of its protocol logs them (a cold-item table has no truncated users to test)."""
    runs = in_row_order(runs, ROWS, [label(e) for e in entries()])
    if "tags.protocol" not in runs.columns:
        raise TableError("no run has a protocol tag")
    out: dict[str, Table] = {}
    for protocol in dict.fromkeys(runs["tags.protocol"].dropna()):
        part = runs[runs["tags.protocol"] == protocol]
        logged = [m for m in METRICS if metric_key(m) in part.columns and part[metric_key(m)].notna().any()]
        metrics = [m for m in METRICS if m not in OPTIONAL or m in logged]
        has_base = has_row(part, ROWS, BASELINE)
        if not has_base:
            log.warning("protocol %s: no %s runs, no significance tests and contributions", protocol, BASELINE)
        out |= build_tables(
            part,
            "protocol",
            rows=ROWS,
            metrics=metrics,
            baseline=BASELINE if has_base else None,
            costs=COSTS,
            contribution=CONTRIBUTION if has_base else None,
            means=MEANS,
            rating_ref=True,
        )
    return out


def write_tables(experiment: str, uri: str, out: Path, command: str, weights: str | None = None) -> dict[str, Table]:
    """Build the tables from the store at ``uri`` (runs with the experiment's image weights, or ``weights``) and
    write ``tables.md``, ``runs.tsv``, ``table.tex``, ``table.csv`` into ``out``, and per protocol the accuracy-per-cost
    plots (``<protocol>_flops_vs_accuracy.png``, ``<protocol>_energy_vs_accuracy.png``: NDCG@20 against training
    FLOPs / fit energy, one point per row) where the runs logged those costs."""
    weights = weights or image_weights(experiment)
    runs = load(uri, experiment, weights)
    built = build(runs)
    write(built, runs, out, command, make_plots=False, markdown="tables.md", intro=intro(experiment, weights))
    for protocol, t in built.items():
        cost_plots(t, runs, out, f"{protocol}_")
    return built


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", choices=EXPERIMENTS, default="mm_ml100k", help="conf/experiment/<name>.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--protocols", nargs="+", default=["warm", "cold", "cold_user", "sparse"], choices=PROTOCOLS)
    ap.add_argument("--only", nargs="*", help="model names or rows 'model / fusion / modalities' to run (default: all)")
    ap.add_argument("--tracking-uri", default=None, help="MLflow store (default: the one the runs use)")
    ap.add_argument("--budget-min", type=float, default=None, help="stop starting runs after this many minutes")
    ap.add_argument("--tables-only", action="store_true")
    ap.add_argument("--out", default=None, help="tables folder (default: results/<experiment>)")
    ap.add_argument("extra", nargs="*", help="extra Hydra overrides for every run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = args.out or str(Path(__file__).resolve().parents[1] / "results" / args.experiment)
    extra = ["trainer.enable_progress_bar=false", *args.extra]
    if args.tracking_uri:
        extra.append(f"logger.tracking_uri='{args.tracking_uri}'")
    if not args.tables_only:
        budget = None if args.budget_min is None else args.budget_min * 60
        run_grid(args.experiment, args.seeds, args.protocols, extra, args.only, budget)
    uri = tracking_uri(args.experiment, extra)
    command = shlex.join(
        ["python", "scripts/mm_grid.py", "--experiment", args.experiment, "--tables-only", "--tracking-uri", uri]
        + ["--out", out]
    )
    built = write_tables(args.experiment, uri, Path(out), command, image_weights(args.experiment, extra))
    for t in built.values():
        print(to_markdown(t))


if __name__ == "__main__":
    main()
