"""Multimodal models on a GPU at each Lightning precision, on the synthetic dataset (no downloads).

Frozen ResNet-18 (random weights) image features and TF-IDF text features feed fusion_rec (early,
attention, graph fusion), VBPR and FREEDOM; each trains with ``NeuralTrainer`` at 32-true, 16-mixed and
bf16-mixed and is evaluated on the GPU. Imports neither Hydra nor MLflow (runs on a bare GPU image).

    python scripts/gpu_check_mm.py [--accelerator gpu] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from mmbench.data.synthetic import Synthetic
from mmbench.encoders.features import build_features
from mmbench.encoders.image import TimmEncoder
from mmbench.encoders.text import TfidfEncoder
from mmbench.evaluation.evaluator import Evaluator
from mmbench.fusion.attention import AttentionFusion
from mmbench.fusion.early import EarlyFusion
from mmbench.fusion.graph import GraphFusion
from mmbench.models.multimodal.freedom import FREEDOM
from mmbench.models.multimodal.fusion_rec import FusionRec
from mmbench.models.multimodal.vbpr import VBPR
from mmbench.splits import load_or_create
from mmbench.splits.splitters import RandomSplit
from mmbench.training import NeuralTrainer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--accelerator", default="gpu")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--precisions", nargs="+", default=["32-true", "16-mixed", "bf16-mixed"])
    a = p.parse_args()
    torch.set_num_threads(1)
    ds = Synthetic(n_users=1000, n_items=800, image_size=32, seed=0).read()
    scratch = tempfile.TemporaryDirectory(prefix="mmbench-gpu-check-")  # split and features, removed at exit
    split = load_or_create(ds, RandomSplit(), f"{scratch.name}/splits")
    encoders = {
        "image": TimmEncoder(model_name="resnet18", pretrained=False, image_size=64, progress=False),
        "text": TfidfEncoder(),
    }
    t = time.perf_counter()
    features, tags, _ = build_features(encoders, ds, f"{scratch.name}/cache")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    print(
        json.dumps(
            {"device": device, "torch": torch.__version__, "encode_s": round(time.perf_counter() - t, 2), **tags}
        )
    )
    ev = Evaluator(ks=[10, 20], progress=False)
    models = {
        "fusion_rec/early": lambda: FusionRec(fusion=EarlyFusion()),
        "fusion_rec/attention": lambda: FusionRec(fusion=AttentionFusion()),
        "fusion_rec/graph": lambda: FusionRec(fusion=GraphFusion()),
        "vbpr": lambda: VBPR(),
        "freedom": lambda: FREEDOM(),
    }
    for name, make in models.items():
        for precision in a.precisions:
            model = make()
            model.set_features(features)
            trainer = NeuralTrainer(
                max_epochs=a.epochs,
                patience=a.epochs,
                batch_size=1024,
                precision=precision,
                accelerator=a.accelerator,
                enable_progress_bar=False,
                deterministic=False,
            )
            t = time.perf_counter()
            report = trainer.fit(model, split.train, split.val, ev)
            fit_s = time.perf_counter() - t
            test = ev.evaluate(model, split.test, [split.train, split.val])
            print(
                json.dumps(
                    {
                        "model": name,
                        "precision": precision,
                        "device": str(model.device),
                        "fit_s": round(fit_s, 2),
                        "best_epoch": report.best_epoch,
                        "val_ndcg@10": round(report.best_score, 4),
                        "test_ndcg@10": round(test.means["ndcg@10"], 4),
                    }
                )
            )


if __name__ == "__main__":
    main()
