"""Validation-only hyperparameter search for the top-N baselines of `experiment=topn_ml100k` (or another experiment).

Builds the experiment's saved split (same config, same fingerprint), fits each model of a small grid on
train and reads validation NDCG@10 (neural models: early stopping on it; the best epoch's value). The test
part is never evaluated here. Prints a table and appends it to results/<experiment>/validation_search.md.

    MMBENCH_DATA_DIR=../shared/data python scripts/tune_topn_ml100k.py [--experiment mm_ml1m] [model ...]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from hydra.utils import instantiate

from mmbench.config import compose
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.models.neural.lightgcn import LightGCN
from mmbench.models.neural.multdae import MultDAE
from mmbench.models.topn.ease import EASE
from mmbench.models.topn.itemknn import ItemKNN
from mmbench.models.topn.userknn import UserKNN
from mmbench.models.topn.wmf import WMF
from mmbench.splits import load_or_create

ROOT = Path(__file__).resolve().parents[1]


def grid(**axes: list) -> list[dict]:
    return [dict(zip(axes, v, strict=True)) for v in itertools.product(*axes.values())]


def adam(lr: float) -> partial:
    return partial(torch.optim.Adam, lr=lr)


GRIDS = {
    "itemknn": (lambda p: ItemKNN(**p), grid(k=[20, 50, 100, 200], shrink=[0.0, 10.0, 50.0])),
    "userknn": (lambda p: UserKNN(**p), grid(k=[20, 50, 100, 200], shrink=[0.0, 10.0, 50.0])),
    "ease": (lambda p: EASE(**p), grid(reg=[50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0])),
    "wmf": (lambda p: WMF(**p), grid(factors=[64, 128], alpha=[5.0, 10.0, 20.0, 40.0], reg=[10.0, 50.0, 100.0, 200.0])),
    "bpr": (
        lambda p: BPR(64, p["reg"], p.get("init_std", 0.1), adam(p["lr"])),
        # init_std 0.04: RecBole's Xavier-normal scale for ML-100K (results/peers_recbole)
        grid(lr=[0.001, 0.005, 0.02], reg=[1e-5, 1e-3], init_std=[0.1, 0.04]),
    ),
    "lightgcn": (
        lambda p: LightGCN(64, p["n_layers"], p["reg"], 0.1, adam(p["lr"])),
        grid(lr=[0.005, 0.02], reg=[1e-4, 1e-3], n_layers=[3]),
    ),
    # users per step: the paper's 500 (2 steps per ML-100K epoch) against smaller batches, nearer RecBole's
    # 40 steps of 2,048 events per epoch (results/peers_recbole)
    "multdae": (
        lambda p: MultDAE((600, 200), 0.5, 0.01, p["users_per_batch"], adam(0.001)),
        grid(users_per_batch=[50, 100, 250, 500]),
    ),
}


def neural_trainer(cfg, checkpoint_dir: str):
    """The experiment's NeuralTrainer with its conf/callbacks early stopping and checkpoint, as `pipeline.fit`
    builds it (conf/trainer alone would leave NeuralTrainer's own default patience)."""
    return instantiate(
        cfg.trainer,
        seed=0,
        enable_progress_bar=False,
        checkpoint_dir=checkpoint_dir,
        early_stopping=cfg.callbacks.early_stopping,
        checkpoint=cfg.callbacks.model_checkpoint,
    )


def main(models: list[str], experiment: str = "topn_ml100k") -> None:
    torch.set_num_threads(1)
    cfg = compose([f"experiment={experiment}", f"paths.work_dir={ROOT}"])
    ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
    split = load_or_create(ds, instantiate(cfg.split), cfg.paths.split_dir)
    ev = Evaluator(ks=[10, 20], metrics=["recall", "ndcg"], progress=False)
    lines = [f"split {split.fingerprint[:16]}; validation only (the test part is never read)", ""]
    lines += ["| model | params | val ndcg@10 | val recall@20 | fit s | epochs (best) |", "|---|---|---|---|---|---|"]
    for name in models:
        build, points = GRIDS[name]
        best = None
        for p in points:
            torch.manual_seed(0)
            model = build(p)
            t = time.perf_counter()
            extra = ""
            if isinstance(model, (BPR, LightGCN, MultDAE)):
                with tempfile.TemporaryDirectory() as ck:
                    trainer = neural_trainer(cfg, ck)
                    rep = trainer.fit(model, split.train, split.val, ev)
                extra = f"{rep.epochs} ({rep.best_epoch})"
            else:
                model.fit(split.train, split.val)
            fit_s = time.perf_counter() - t
            r = ev.evaluate(model, split.val, [split.train]).means
            line = f"| {name} | {p} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} | {fit_s:.1f} | {extra} |"
            print(line, flush=True)
            lines.append(line)
            if best is None or r["ndcg@10"] > best[0]:
                best = (r["ndcg@10"], p)
        lines.append(f"| **{name} chosen** | {best[1]} | {best[0]:.4f} | | | |")
        print(lines[-1], flush=True)
    out = ROOT / "results" / experiment / "validation_search.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", metavar="MODEL", help=f"default: all of {' '.join(GRIDS)}")
    ap.add_argument("--experiment", default="topn_ml100k", help="conf/experiment/<name>.yaml whose split is searched")
    args = ap.parse_args()
    if unknown := [m for m in args.models if m not in GRIDS]:
        ap.error(f"unknown model(s) {unknown}: this search knows {list(GRIDS)}")
    main(args.models or list(GRIDS), args.experiment)
