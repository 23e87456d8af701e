"""BPR-MF on ML-100K on a GPU at each Lightning precision: fit time, evaluation time and metrics.

Checks that ``trainer=gpu`` (16-mixed) and bf16-mixed train and evaluate on the GPU and agree with
32-bit. Imports neither Hydra nor MLflow, so it runs on a bare GPU image with PyTorch Lightning.

    python scripts/gpu_check.py --data-dir <folder holding movielens/ml-100k> [--epochs 30] [--devices auto|N]

``--devices`` (default ``auto``: every visible GPU) above 1 is the DDP mode: Lightning re-runs this script once per
further device (``LOCAL_RANK`` set), every rank trains on its shard of each batch, and rank 0 alone prints and tests.
Each line then also gives the validation metric gathered from all ranks during training (``val_ndcg@10``) beside
one process evaluating the same restored weights (``val_ndcg@10_one_process``): equal to 1e-6 at 32-true (checked;
the script fails otherwise); under mixed precision the in-training validation runs under autocast, so they differ
slightly. Asking for more GPUs than the machine has fails before any work. ``--accelerator cpu --devices 2`` runs the
same DDP mode on the CPU (gloo).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time

import torch

from mmbench.data.ml100k import MovieLens100K
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--precisions", nargs="+", default=["32-true", "16-mixed", "bf16-mixed"])
    p.add_argument("--accelerator", default="gpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--devices", default="auto", help="auto: every visible GPU (1 on the CPU); N > 1: DDP")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    gpu = a.accelerator in ("gpu", "cuda")
    available = torch.cuda.device_count() if gpu else None
    if a.devices == "auto":
        devices = max(available, 1) if gpu else 1
    elif a.devices.isdigit() and int(a.devices) >= 1:
        devices = int(a.devices)
    else:
        sys.exit(f"gpu_check: --devices {a.devices!r}: give auto or a number of devices >= 1")
    if gpu and devices > available:
        sys.exit(f"gpu_check: --devices {a.devices} asks for {devices} GPUs; this machine has {available}")
    ds = MovieLens100K(a.data_dir, download=False).read()
    scratch = tempfile.TemporaryDirectory(prefix="mmbench-gpu-check-")  # the split, removed at exit
    split = load_or_create(ds, RandomSplit(), scratch.name)
    ev = Evaluator(progress=False)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    first = True
    for precision in a.precisions:
        model = BPR(embedding_dim=64, optimizer=lambda params: torch.optim.Adam(params, lr=0.005))
        trainer = NeuralTrainer(
            max_epochs=a.epochs,
            patience=a.epochs,
            precision=precision,
            accelerator=a.accelerator,
            devices=devices,
            strategy="ddp" if devices > 1 else "auto",
            enable_progress_bar=False,
            deterministic=False,
        )
        t = time.perf_counter()
        report = trainer.fit(model, split.train, split.val, ev)
        fit_s = time.perf_counter() - t
        if report.rank != 0:  # another DDP rank: it trained; rank 0 tests and reports
            continue
        if first:
            print(json.dumps({"device": device, "torch": torch.__version__, "devices": report.world_size}))
            first = False
        val_one = ev.evaluate(model, split.val, [split.train]).means["ndcg@10"]
        t = time.perf_counter()
        test = ev.evaluate(model, split.test, [split.train, split.val])
        eval_s = time.perf_counter() - t
        print(
            json.dumps(
                {
                    "precision": precision,
                    "devices": report.world_size,
                    "model_device": str(model.device),
                    "epochs": report.epochs,
                    "best_epoch": report.best_epoch,
                    "fit_s": round(fit_s, 3),
                    "epoch_s": round(fit_s / a.epochs, 4),
                    "test_eval_s": round(eval_s, 4),
                    "val_ndcg@10": round(report.best_score, 6),
                    "val_ndcg@10_one_process": round(val_one, 6),
                    "test_ndcg@10": round(test.means["ndcg@10"], 4),
                    "test_recall@20": round(test.means["recall@20"], 4),
                }
            )
        )
        if precision == "32-true" and abs(report.best_score - val_one) > 1e-6:
            sys.exit(f"gpu_check: validation during training {report.best_score} != one process {val_one} at 32-true")


if __name__ == "__main__":
    main()
