"""mmbench's side of the peer comparisons (scripts/compare_recbole.py, scripts/compare_mmrec.py).

One split made by mmbench is exported in a peer's own format; the peer runs in its own environment
(scripts/peers/setup.sh) through a runner (scripts/peers/run_<peer>.py) that writes its trained model's full score
matrix; mmbench's evaluator ranks those scores under mmbench's protocol, so both sides are measured by one
evaluator. The peer output a runner writes in ``<out>``:

- ``scores.npy``: float32 ``[len(users), len(items)]``, the peer's score of every (user, item);
- ``users.txt`` / ``items.txt``: the ids of the rows / columns, one a line, as written in the exported files;
- ``result.json``: the peer's own test metrics (its own evaluation), settings, seconds and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Container
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from mmbench.data.interactions import Dataset, Interactions
from mmbench.data.train_content import content_for_training
from mmbench.encoders.base import ModalityFeatures
from mmbench.evaluation.evaluator import EvalResult, Evaluator
from mmbench.models.base import Recommender
from mmbench.splits import load_or_create
from mmbench.splits.base import Split

RECBOLE_PARTS = {"train": "train", "val": "valid", "test": "test"}  # mmbench part -> RecBole benchmark suffix
RECBOLE_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
MMREC_HEADER = ["userID", "itemID", "rating", "timestamp", "x_label"]
MMREC_LABELS = {"train": 0, "val": 1, "test": 2}  # MMRec's x_label
MMREC_FEATURES = {"image": "image_feat.npy", "text": "text_feat.npy"}  # mmbench modality -> MMRec's file


def check_peer_models(
    models: list[str], profiles: list[str], peer: str, peer_class: Container[str], same: Container[str], root: Path
) -> None:
    """Fail before any work on a model mmbench (``root``'s conf/model) or the ``peer`` comparison cannot run yet."""
    for m in models:
        if m not in peer_class:
            raise SystemExit(f"--models: unknown {m!r}; choose from {sorted(peer_class)}")
        if not (root / "conf" / "model" / f"{m}.yaml").exists():
            raise SystemExit(f"--models {m}: mmbench has no conf/model/{m}.yaml yet")
        if "mmbench" in profiles and m not in same:
            raise SystemExit(f"--models {m}: no translation of mmbench's hyperparameters to {peer}'s yet (SAME)")


def peer_arguments(
    description: str, models: list[str], experiment: str, out: str, seed_help: str
) -> argparse.ArgumentParser:
    """The arguments every peer comparison takes (a comparison adds its peer's own)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--peer-python", required=True, help="the peers' environment's python (scripts/peers/setup.sh)")
    ap.add_argument("--experiment", default=experiment, help="the mmbench experiment whose split and eval are used")
    ap.add_argument("--models", nargs="+", default=models)
    ap.add_argument("--profiles", nargs="+", default=["defaults", "mmbench"], choices=["defaults", "mmbench"])
    ap.add_argument("--out", default=out, help="exported split and peer outputs (not committed)")
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0, help=seed_help)
    seeds.add_argument("--seeds", type=int, nargs="+", help="run both sides with each seed; add mean ± sd over them")
    ap.add_argument("--epochs", type=int, default=None, help="cap both sides' epochs (a plumbing check, not a result)")
    ap.add_argument("--override", nargs="*", default=[], help="extra mmbench overrides, e.g. dataset=ml100k_mm")
    return ap


def mmbench_overrides(a: argparse.Namespace) -> list[str]:
    """The overrides of every mmbench run of a comparison (model and seed are added per run): one torch thread, no
    logger or progress bars, ``--override``, and ``--epochs``."""
    base = [f"experiment={a.experiment}", "logger=none", "threads=1", "eval.progress=false"]
    base += ["trainer.enable_progress_bar=false", *a.override]
    return base if a.epochs is None else [*base, f"trainer.max_epochs={a.epochs}"]


def print_results(rows: list[dict], columns: list[tuple[str, str]], header: str, seeds: list[int] | None) -> None:
    """The comparison's whole table under ``header`` and, with ``--seeds``, its per-seed summary."""
    print(f"\n{header}")
    print(table(rows, columns))
    if seeds is not None:
        print(f"\nmean ± sd over seeds {' '.join(map(str, seeds))} (times: medians)")
        print(table(seed_summary(rows), SUMMARY_COLUMNS))


def mmbench_split(cfg: DictConfig) -> tuple[Dataset, Split]:
    """The dataset and saved split a run of ``cfg`` uses (same fingerprint, read back if it exists)."""
    ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
    split = load_or_create(ds, instantiate(cfg.split), cfg.paths.split_dir)
    return content_for_training(ds, split.train), split


def run_mmbench(cfg: DictConfig) -> dict:
    """One ordinary mmbench run of ``cfg`` (fit, validation, test once): its metrics, split fingerprint, run id and
    the wall time of the whole run (data, fit, evaluation)."""
    from mmbench.pipeline import run

    t = time.perf_counter()
    res = run(cfg)
    wall_s = time.perf_counter() - t
    return {"metrics": res.metrics, "fingerprint": res.split.fingerprint, "run_id": res.run_id, "wall_s": wall_s}


def export_recbole(ds: Dataset, split: Split, out: Path, name: str) -> dict[str, Path]:
    """RecBole atomic files ``<out>/<name>/<name>.{train,valid,test}.inter`` (its ``benchmark_filename`` split):
    tab-separated, header ``field:type``, the raw user and item ids as tokens, events in the split's order."""
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, suffix in RECBOLE_PARTS.items():
        inter: Interactions = getattr(split, part)
        frame = pd.DataFrame(
            {
                RECBOLE_HEADER[0]: ds.user_ids[inter.users],
                RECBOLE_HEADER[1]: ds.item_ids[inter.items],
                RECBOLE_HEADER[2]: inter.ratings,
                RECBOLE_HEADER[3]: inter.timestamps,
            }
        )
        paths[part] = folder / f"{name}.{suffix}.inter"
        frame.to_csv(paths[part], sep="\t", index=False)
    return paths


def export_mmrec(ds: Dataset, split: Split, features: dict[str, ModalityFeatures], out: Path, name: str) -> Path:
    """MMRec's folder ``<out>/<name>/``: ``<name>.inter`` (tab-separated ``userID itemID rating timestamp x_label``,
    x_label 0/1/2 = train/val/test, ids = mmbench's contiguous ids, which MMRec requires) and, per modality of
    ``features`` named in :data:`MMREC_FEATURES`, ``<modality>_feat.npy``: row k = item k, the frozen values mmbench's
    models read, zero where the item has none (masked). MMRec counts items as the largest id + 1, so the last item
    must have an event."""
    if split.train.n_items and not np.isin(
        split.train.n_items - 1, np.concatenate([split.train.items, split.val.items, split.test.items])
    ):
        raise ValueError(
            f"export_mmrec: item {split.train.n_items - 1} (raw {ds.item_ids[-1]!r}) has no event in the split; MMRec "
            "would count one item less than the feature files hold"
        )
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for part, label in MMREC_LABELS.items():
        inter: Interactions = getattr(split, part)
        frames.append(
            pd.DataFrame(
                {
                    "userID": inter.users,
                    "itemID": inter.items,
                    "rating": inter.ratings,
                    "timestamp": inter.timestamps,
                    "x_label": np.full(len(inter), label, np.int64),
                }
            )
        )
    pd.concat(frames, ignore_index=True).to_csv(folder / f"{name}.inter", sep="\t", index=False)
    unknown = sorted(set(features) - set(MMREC_FEATURES))
    if unknown:
        raise ValueError(f"export_mmrec: MMRec reads only modalities {sorted(MMREC_FEATURES)}, not {unknown}")
    for modality, f in features.items():
        values = f.require_frozen("export_mmrec").astype(np.float32) * f.mask[:, None]
        np.save(folder / MMREC_FEATURES[modality], values)
    return folder


def import_scores(folder: Path, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """A runner's ``scores.npy`` re-indexed to mmbench's ids ``[len(user_ids), len(item_ids)]`` (rows/columns by
    ``users.txt`` / ``items.txt``, matched as strings). A user the peer did not score gets a row of zeros (such a
    user has no event, so it is never evaluated); an item it did not score gets -inf (ranked after every scored
    item). An id the peer scored that mmbench does not know, or a NaN score, is an error."""
    scores = np.load(folder / "scores.npy")
    rows = (folder / "users.txt").read_text().split("\n")[:-1]
    cols = (folder / "items.txt").read_text().split("\n")[:-1]
    if scores.shape != (len(rows), len(cols)):
        raise ValueError(
            f"{folder}/scores.npy: shape {scores.shape}, but users.txt/items.txt list {len(rows)} x {len(cols)}"
        )
    if np.isnan(scores).any():
        r, c = np.argwhere(np.isnan(scores))[0]
        raise ValueError(f"{folder}/scores.npy: NaN score, e.g. user {rows[r]!r}, item {cols[c]!r}")
    u_pos = _positions(user_ids, rows, folder / "users.txt")
    i_pos = _positions(item_ids, cols, folder / "items.txt")
    out = np.zeros((len(user_ids), len(item_ids)), np.float32)
    out[:, np.setdiff1d(np.arange(len(item_ids)), i_pos)] = -np.inf
    out[np.ix_(u_pos, i_pos)] = scores
    return out


def _positions(ids: np.ndarray, names: list[str], file: Path) -> np.ndarray:
    index = pd.Index(np.asarray(ids).astype(str))
    pos = index.get_indexer(names)
    if (pos < 0).any():
        bad = np.flatnonzero(pos < 0)[0]
        raise ValueError(f"{file}: line {bad + 1}: id {names[bad]!r} is not in mmbench's split")
    if len(np.unique(pos)) != len(pos):
        raise ValueError(f"{file}: an id is listed twice")
    return pos


class PeerScores(Recommender):
    """A peer's score matrix in mmbench's id space, ranked by mmbench's Evaluator like any model."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32))

    def fit(self, train: Interactions, val: Interactions | None = None) -> PeerScores:
        return self

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        rows = self.scores[users]
        return rows.clone() if items is None else rows[:, items]


def evaluate_peer(scores: np.ndarray, split: Split, evaluator: Evaluator) -> EvalResult:
    """The peer's test metrics under mmbench's protocol: full ranking, training and validation items masked."""
    return evaluator.evaluate(PeerScores(scores), split.test, [split.train, split.val])


def peer_python(python: str) -> str:
    """The peer environment's python as a path that holds from any working directory (a relative path is taken from
    the caller's; symbolic links are kept: a venv's python is one)."""
    return os.path.abspath(python) if os.sep in python else python


def peer_env() -> dict[str, str]:
    """The environment a peer runner gets: this one without mmbench's venv and path, one thread for OpenMP / MKL."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_peer(python: str, runner: Path, job: dict, out: Path, timeout: float | None = None) -> dict:
    """Run ``runner`` in the peer environment with ``job`` (written to ``<out>/job.json``), in ``out`` (where the
    peers write their own logs and checkpoints); its output is appended to ``<out>/log.txt``. Returns the runner's
    ``result.json`` plus ``wall_s``, the subprocess's wall time. A relative ``python`` path is taken from the
    caller's folder (the runner runs in ``out``); symbolic links are kept (a venv's python is one)."""
    python = peer_python(python)
    out.mkdir(parents=True, exist_ok=True)
    (out / "job.json").write_text(json.dumps(job, indent=1))
    env = peer_env()
    t = time.perf_counter()
    with (out / "log.txt").open("a") as log:  # appended: an interrupted, resumed job keeps its earlier log
        log.write(f"===== {time.strftime('%Y-%m-%d %H:%M:%S')} {runner.name} {out / 'job.json'}\n")
        log.flush()
        proc = subprocess.run(
            [python, str(runner), str(out / "job.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=out,
            timeout=timeout,
        )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        tail = "\n".join((out / "log.txt").read_text().splitlines()[-25:])
        raise RuntimeError(f"{runner.name} failed (exit {proc.returncode}); the end of {out}/log.txt:\n{tail}")
    return json.loads((out / "result.json").read_text()) | {"wall_s": wall}


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """A markdown table; ``columns`` are (key, header) pairs; floats get 4 decimals, seconds ('_s' keys) 1."""

    def cell(key: str, v: object) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if key.endswith("_s") else f"{v:.4f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(k, r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join(lines)


def metrics(values: dict, prefix: str) -> dict:
    """The four ranking metrics the comparison tables show, read from ``values`` under ``prefix``."""
    return {k: float(values[f"{prefix}{k}"]) for k in ("ndcg@20", "recall@20", "ndcg@10", "recall@10")}


def mmbench_row(run: dict, model: str, seed: int, split: Split) -> dict:
    """The table row of one mmbench run (:func:`run_mmbench`'s result), which must have used ``split``."""
    assert run["fingerprint"] == split.fingerprint, "mmbench ran on another split"
    m, epochs = run["metrics"], run["metrics"].get("fit/epochs")
    row = {"model": model, "side": "mmbench", "settings": "conf/model defaults", "seed": seed} | metrics(m, "test/")
    row |= {"n_users": int(m["test/n_users"]), "epochs": None if epochs is None else int(epochs)}
    return row | {"fit_s": m["time/fit_s"], "wall_s": run["wall_s"]}


def seed_summary(rows: list[dict]) -> list[dict]:
    """One row per (model, side, settings): metrics as 'mean ± sd' over its seeds, times and epochs as medians."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["side"], r["settings"]), []).append(r)
    out = []
    for (model, side, settings), rs in groups.items():
        s = {"model": model, "side": side, "settings": settings, "seeds": " ".join(str(r["seed"]) for r in rs)}
        for k in ("ndcg@20", "recall@20"):
            v = np.array([r[k] for r in rs], dtype=float)
            s[k] = f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"
        for k in ("epochs", "fit_s", "wall_s"):
            v = [r[k] for r in rs if r.get(k) is not None]
            s[k] = float(np.median(v)) if v else None
        s["epochs"] = None if s["epochs"] is None else f"{s['epochs']:g}"  # a count, not a 4-decimal metric
        out.append(s)
    return out


# a comparison table's columns (compare_mmrec.py adds MMRec's whole-grid fit time)
PEER_COLUMNS = [
    ("model", "model"),
    ("side", "side"),
    ("settings", "settings"),
    ("seed", "seed"),
    ("ndcg@20", "NDCG@20"),
    ("recall@20", "Recall@20"),
    ("ndcg@10", "NDCG@10"),
    ("recall@10", "Recall@10"),
    ("peer_ndcg@20", "peer's own NDCG@20"),
    ("n_users", "test users"),
    ("epochs", "epochs"),
    ("fit_s", "fit s"),
    ("wall_s", "wall s"),
]

# the columns of :func:`seed_summary`'s rows
SUMMARY_COLUMNS = [
    ("model", "model"),
    ("side", "side"),
    ("settings", "settings"),
    ("seeds", "seeds"),
    ("ndcg@20", "NDCG@20"),
    ("recall@20", "Recall@20"),
    ("epochs", "epochs (median)"),
    ("fit_s", "fit s (median)"),
    ("wall_s", "wall s (median)"),
]
