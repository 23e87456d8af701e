"""BPR-MF on ML-100K on a GPU at each Lightning precision: fit time, evaluation time and metrics.

Checks that ``trainer=gpu`` (16-mixed) and bf16-mixed train and evaluate on the GPU and agree with
32-bit. Imports neither Hydra nor MLflow, so it runs on a bare GPU image with PyTorch Lightning.

    python scripts/gpu_check.py --data-dir <folder holding movielens/ml-100k> [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import platform
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
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = MovieLens100K(a.data_dir, download=False).read()
    split = load_or_create(ds, RandomSplit(), tempfile.mkdtemp())
    ev = Evaluator(progress=False)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor()
    print(json.dumps({"device": device, "torch": torch.__version__}))
    for precision in a.precisions:
        model = BPR(embedding_dim=64, optimizer=lambda params: torch.optim.Adam(params, lr=0.005))
        trainer = NeuralTrainer(
            max_epochs=a.epochs,
            patience=a.epochs,
            precision=precision,
            accelerator=a.accelerator,
            enable_progress_bar=False,
            deterministic=False,
        )
        t = time.perf_counter()
        report = trainer.fit(model, split.train, split.val, ev)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        test = ev.evaluate(model, split.test, [split.train, split.val])
        eval_s = time.perf_counter() - t
        print(
            json.dumps(
                {
                    "precision": precision,
                    "model_device": str(model.device),
                    "epochs": report.epochs,
                    "best_epoch": report.best_epoch,
                    "fit_s": round(fit_s, 3),
                    "epoch_s": round(fit_s / a.epochs, 4),
                    "test_eval_s": round(eval_s, 4),
                    "val_ndcg@10": round(report.best_score, 4),
                    "test_ndcg@10": round(test.means["ndcg@10"], 4),
                    "test_recall@20": round(test.means["recall@20"], 4),
                }
            )
        )


if __name__ == "__main__":
    main()
