"""mmbench beside MMRec on one split: BPR, LightGCN, VBPR, FREEDOM, BM3 and LATTICE.

The split is mmbench's saved split of ``--experiment`` (default ``mm_ml100k``: ML-100K-MM, per-user random
80/10/10, seed 0; item features from pretrained EfficientNet-Lite0 posters and all-MiniLM-L6-v2 texts), exported
in MMRec's format: ``<out>/data/<name>/<name>.inter`` (``userID itemID rating timestamp x_label``, mmbench's
contiguous ids, x_label 0/1/2 = train/val/test) with ``image_feat.npy`` / ``text_feat.npy``, the very feature
rows mmbench's models read (zero where an item has no poster). Every model runs on it:

- mmbench: an ordinary run (``mmbench experiment=<experiment> model=<name>``: conf/model defaults, early stopping
  on validation, test once), one torch thread;
- MMRec (its public repository at the commit scripts/peers/setup.sh pins), in the peers' environment through
  scripts/peers/run_mmrec.py, one torch thread, twice: ``defaults`` (MMRec's published configs: overall.yaml and
  configs/model/<MODEL>.yaml, including its grid over the listed hyperparameters, chosen on validation, not on
  test as MMRec's quick_start does) and ``mmbench`` (mmbench's hyperparameters translated, :data:`SAME`).

The chosen MMRec model's best-validation-epoch weights score every (user, item); mmbench's evaluator ranks those
scores with mmbench's protocol (full ranking, training and validation items masked), so every row is measured by
one evaluator. MMRec's own test numbers are printed beside them; they differ by protocol: MMRec masks only training
items when testing (validation items stay in its ranking). Times: mmbench's fit and whole run; MMRec's
``Trainer.fit`` of the chosen combination (with its per-epoch validation and test evaluation), every combination's
fits, and the whole subprocess.

    MMBENCH_DATA_DIR=../shared/data python scripts/compare_mmrec.py --peer-python ../mmbench-peers/venv/bin/python \\
        --mmrec ../mmbench-peers/MMRec [--models freedom] [--profiles defaults mmbench] [--epochs 2 --grid first]

A published grid can take hours: ``--resume`` keeps the combinations an interrupted run finished, and
``--grid-workers N`` splits the grid over N one-thread runners (scripts/peers/run_mmrec.py, ``share``).

Seeds: ``--seed S`` (default 0) is mmbench's model seed, MMRec keeping its configs' own (999); ``--seeds 0 1 2`` runs
every model on both sides once per seed (MMRec with ``seed: S``; the split stays ``split.seed``'s) and ends with the
mean and standard deviation over the seeds, so that a difference can be set against both sides' seed spread.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mmbench.config import compose  # noqa: E402
from mmbench.encoders.features import build_features  # noqa: E402
from scripts.peers.common import (  # noqa: E402
    PEER_COLUMNS,
    PeerScores,
    check_peer_models,
    evaluate_peer,
    export_mmrec,
    import_scores,
    metrics,
    mmbench_overrides,
    mmbench_row,
    mmbench_split,
    peer_arguments,
    peer_env,
    peer_python,
    print_results,
    run_mmbench,
    run_peer,
    table,
)

RUNNER = ROOT / "scripts" / "peers" / "run_mmrec.py"
PEER_CLASS = {
    "bpr": "BPR",
    "lightgcn": "LightGCN",
    "vbpr": "VBPR",
    "freedom": "FREEDOM",
    "bm3": "BM3",
    "lattice": "LATTICE",
}
METRIC_NAMES = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "map": "MAP"}  # MMRec's metrics


def training(cfg: DictConfig) -> dict:
    """mmbench's training settings in MMRec's terms (one point: no grid, ``hyper_parameters`` emptied)."""
    metric, k = str(cfg.trainer.monitor).split("@")
    return {
        "train_batch_size": int(cfg.trainer.batch_size),
        "epochs": int(cfg.trainer.max_epochs),
        "stopping_step": int(cfg.callbacks.early_stopping.patience),
        "valid_metric": f"{METRIC_NAMES[metric]}@{k}",
        "learner": "adam",
        "learning_rate": float(cfg.model.optimizer.lr),
        "hyper_parameters": [],
    }


def same_bpr(cfg: DictConfig) -> dict:
    # reg_weight takes mmbench's reg; the forms differ (MMRec: sum of Frobenius norms / batch; mmbench: mean of
    # squared norms / 2)
    return training(cfg) | {"embedding_size": int(cfg.model.embedding_dim), "reg_weight": float(cfg.model.reg)}


def same_lightgcn(cfg: DictConfig) -> dict:
    m = cfg.model
    return training(cfg) | {
        "embedding_size": int(m.embedding_dim),
        "n_layers": int(m.n_layers),
        "reg_weight": float(m.reg),
    }


def same_vbpr(cfg: DictConfig) -> dict:
    # MMRec's VBPR projects the concatenated features to embedding_size (= mmbench's content_dim when equal)
    m = cfg.model
    if int(m.content_dim) != int(m.embedding_dim):
        raise SystemExit(
            f"vbpr: MMRec's VBPR has one size for ids and content; mmbench has {m.embedding_dim} and {m.content_dim}"
        )
    return training(cfg) | {"embedding_size": int(m.embedding_dim), "reg_weight": float(m.reg)}


def both_modalities(cfg: DictConfig, model: str) -> list[str]:
    """The run's modalities, which must be image and text: MMRec's multimodal models read both feature files."""
    names = list(cfg.encoders) if cfg.model.modalities is None else list(cfg.model.modalities)
    if sorted(names) != ["image", "text"]:
        raise SystemExit(f"{model}: MMRec's {PEER_CLASS[model]} reads image and text; mmbench's run has {names}")
    return names


def same_freedom(cfg: DictConfig) -> dict:
    m = cfg.model
    names = both_modalities(cfg, "freedom")
    w = [1.0] * len(names) if m.modality_weights is None else [float(v) for v in m.modality_weights]
    return training(cfg) | {
        "embedding_size": int(m.embedding_dim),
        "feat_embed_dim": int(m.embedding_dim),
        "knn_k": int(m.k),
        "n_ui_layers": int(m.n_ui_layers),
        "n_mm_layers": int(m.n_mm_layers),
        "dropout": float(m.dropout),
        "reg_weight": float(m.reg_weight),
        "mm_image_weight": w[names.index("image")] / sum(w),
    }


def same_bm3(cfg: DictConfig) -> dict:
    # MMRec's BM3 projects both modalities to embedding_size (its feat_embed_dim is ignored) and reads both files
    m = cfg.model
    both_modalities(cfg, "bm3")
    return training(cfg) | {
        "embedding_size": int(m.embedding_dim),
        "n_layers": int(m.n_layers),
        "dropout": float(m.dropout),
        "reg_weight": float(m.reg_weight),
        "cl_weight": float(m.cl_weight),
    }


def same_lattice(cfg: DictConfig) -> dict:
    # MMRec's LightGCN depth is len(weight_size); its learning-rate decay 0.96^(epoch/50), which mmbench's LATTICE
    # does not apply, is switched off (a factor 1)
    m = cfg.model
    both_modalities(cfg, "lattice")
    return training(cfg) | {
        "embedding_size": int(m.embedding_dim),
        "feat_embed_dim": int(m.feat_embed_dim),
        "weight_size": [int(m.embedding_dim)] * int(m.n_ui_layers),
        "knn_k": int(m.k),
        "lambda_coeff": float(m.lambda_coeff),
        "n_layers": int(m.n_layers),
        "reg_weight": float(m.reg_weight),
        "cf_model": "lightgcn",
        "learning_rate_scheduler": [1.0, 50],
    }


# mmbench's hyperparameters in MMRec's terms, per mmbench model
SAME: dict[str, Callable[[DictConfig], dict]] = {
    "bpr": same_bpr,
    "lightgcn": same_lightgcn,
    "vbpr": same_vbpr,
    "freedom": same_freedom,
    "bm3": same_bm3,
    "lattice": same_lattice,
}
MODELS = list(SAME)


def start_grid_helpers(python: str, job: dict, n: int) -> list[tuple[subprocess.Popen, Path]]:
    """Start ``n`` runners beside ``job``'s own that train its grid's combinations and stop (``train_only``); all of
    them claim combinations: ``job`` itself gets ``share`` and ``resume`` set (scripts/peers/run_mmrec.py). A job that
    did not resume has its kept combinations deleted here first, before any runner starts, and every runner then
    keeps what the others finish. Each helper logs to ``<out>/helper-<k>.log``."""
    if n == 0:
        return []
    out = Path(job["out"])
    if not job["resume"]:
        shutil.rmtree(out / "combos", ignore_errors=True)
    job |= {"share": True, "resume": True}
    out.mkdir(parents=True, exist_ok=True)
    helpers = []
    for k in range(1, n + 1):
        (out / f"job-helper-{k}.json").write_text(json.dumps(job | {"train_only": True}, indent=1))
        with (out / f"helper-{k}.log").open("a") as log:
            proc = subprocess.Popen(
                [peer_python(python), str(RUNNER), str(out / f"job-helper-{k}.json")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=peer_env(),
                cwd=out,
            )
        helpers.append((proc, out / f"helper-{k}.log"))
    return helpers


def finish_grid_helpers(helpers: list[tuple[subprocess.Popen, Path]], stop: bool = False) -> None:
    """Wait for the helpers (the main runner has read every combination, so they are done or finishing), or, with
    ``stop`` (the main runner failed), stop them first. A helper that failed fails the comparison with its log's end."""
    for proc, log in helpers:
        if stop:
            proc.terminate()
        if proc.wait() != 0 and not stop:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise RuntimeError(f"grid helper failed (exit {proc.returncode}); the end of {log}:\n{tail}")


def check_models(models: list[str], profiles: list[str]) -> None:
    """Fail before any work on a model mmbench or this script cannot run yet."""
    check_peer_models(models, profiles, "MMRec", PEER_CLASS, SAME, ROOT)


def main() -> None:
    ap = peer_arguments(
        __doc__.split("\n")[0],
        MODELS,
        "mm_ml100k",
        "splits/peers_mmrec",
        seed_help="mmbench's seed; MMRec keeps its configs' seed",
    )
    ap.add_argument("--mmrec", required=True, help="MMRec's checkout (scripts/peers/setup.sh: <dir>/MMRec)")
    ap.add_argument("--grid", default="full", choices=["full", "first"], help="MMRec's grid: all, or first values")
    ap.add_argument(
        "--grid-workers",
        type=int,
        default=1,
        help="MMRec: runners that split a grid's combinations (one thread each; default 1: one after the other)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="MMRec: keep the grid combinations an interrupted run of the same job finished (default: train all)",
    )
    a = ap.parse_args()
    if a.grid_workers < 1:
        ap.error(f"--grid-workers {a.grid_workers}: at least 1")
    check_models(a.models, a.profiles)
    out = Path(a.out).resolve()
    base = mmbench_overrides(a)
    run_seeds = a.seeds or [a.seed]
    cfg0 = compose([*base, f"seed={run_seeds[0]}", f"model={a.models[0]}"])
    ds, split = mmbench_split(cfg0)
    encoders = {str(m): instantiate(c) for m, c in cfg0.encoders.items()}
    torch.set_num_threads(int(cfg0.threads))  # as a run extracts: the same cache entry, the features mmbench trains on
    features, _, _ = build_features(encoders, ds, cfg0.paths.cache_dir, split.train)
    name = ds.name
    folder = export_mmrec(ds, split, features, out / "data", name)
    ev = instantiate(cfg0.eval)
    dims = {m: f.values.shape[1] for m, f in features.items()}
    print(
        f"split {split.fingerprint[:16]}: {len(split.train)} / {len(split.val)} / {len(split.test)} events, "
        f"features {dims}, exported to {folder}",
        flush=True,
    )

    rows = []
    for m in a.models:
        for seed in run_seeds:
            cfg = compose([*base, f"seed={seed}", f"model={m}"])
            rows.append(mmbench_row(run_mmbench(cfg), m, seed, split))
            print(table(rows[-1:], COLUMNS), flush=True)
            for profile in a.profiles:
                conf = {} if profile == "defaults" else SAME[m](cfg)
                if a.epochs is not None:
                    conf["epochs"] = a.epochs
                if a.seeds is not None:
                    conf["seed"] = seed
                job = {
                    "mmrec": str(Path(a.mmrec).resolve()),
                    "data_path": str(out / "data"),
                    "dataset": name,
                    "model": PEER_CLASS[m],
                    "config": conf,
                    "grid": a.grid,
                    "resume": a.resume,
                    "threads": 1,
                    "out": str(out / "runs" / (f"{m}-{profile}" + ("" if a.seeds is None else f"-seed{seed}"))),
                }
                helpers = start_grid_helpers(a.peer_python, job, a.grid_workers - 1)
                try:
                    res = run_peer(a.peer_python, RUNNER, job, Path(job["out"]))
                except BaseException:
                    finish_grid_helpers(helpers, stop=True)
                    raise
                finish_grid_helpers(helpers)
                # MMRec's ids are mmbench's contiguous ids (export_mmrec writes them so)
                ids = np.arange(len(ds.user_ids)), np.arange(len(ds.item_ids))
                scores = import_scores(Path(job["out"]), *ids)
                ev_res = evaluate_peer(scores, split, ev)
                row = {"model": m, "side": "MMRec", "settings": profile, "seed": res["settings"].get("seed")}
                row |= metrics(ev_res.means, "")
                row |= {"n_users": ev_res.n_users, "peer_ndcg@20": res["test"].get("ndcg@20"), "epochs": res["epochs"]}
                rows.append(row | {"fit_s": res["fit_s"], "fit_all_s": res["fit_all_s"], "wall_s": res["wall_s"]})
                print(table(rows[-1:], COLUMNS), flush=True)
                own = ev.evaluate(PeerScores(scores), split.test, [split.train])  # MMRec's masking: training only
                check = ", ".join(f"{k} {own.means[k]:.4f} / {res['test'][k]:.4f}" for k in ("ndcg@20", "recall@20"))
                print(f"  protocol check (mmbench's evaluation, MMRec's masking / MMRec's own): {check}", flush=True)
                print(
                    f"  MMRec {res['version'][:12]} settings: {json.dumps(res['settings'])}; chosen on validation "
                    f"{res['chosen']} of {len(res['runs'])} combinations ({res.get('resumed', 0)} read from an "
                    f"earlier, interrupted run of the job, {res.get('shared', 0)} trained by other grid workers)",
                    flush=True,
                )
    header = (
        f"split {split.fingerprint}; every metric by mmbench's evaluator; peer's own NDCG@20 = MMRec's evaluation "
        "(validation items left in its test ranking)"
    )
    print_results(rows, COLUMNS, header, a.seeds)


COLUMNS = [*PEER_COLUMNS[:-1], ("fit_all_s", "fit s, whole grid"), PEER_COLUMNS[-1]]


if __name__ == "__main__":
    main()
