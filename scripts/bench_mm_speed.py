"""Speed targets of the multimodal stage on ML-100K-MM: poster feature extraction (first run, then
cached), text features, and one training epoch of multimodal models with cached features.

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_mm_speed.py --threads 2

Uses a fresh temporary cache folder, so the first extraction really computes. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2, help="torch threads for feature extraction")
    ap.add_argument("--train-threads", type=int, default=1, help="torch threads for training (project default 1)")
    ap.add_argument("--image-model", default="resnet18")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mmbench.data.ml100k_mm import MovieLens100KMM
    from mmbench.encoders import build_features
    from mmbench.encoders.image import TimmEncoder
    from mmbench.encoders.text import SentenceTransformerEncoder
    from mmbench.evaluation.evaluator import Evaluator
    from mmbench.fusion import AttentionFusion, EarlyFusion, GraphFusion
    from mmbench.models.freedom import FREEDOM
    from mmbench.models.fusion_rec import FusionRec
    from mmbench.models.vbpr import VBPR
    from mmbench.splits import load_or_create
    from mmbench.splits.splitters import RandomSplit
    from mmbench.training import NeuralTrainer

    rows: list[tuple[str, float]] = []
    t = time.perf_counter()
    ds = MovieLens100KMM(os.environ["MMBENCH_DATA_DIR"], download=False).read()
    rows.append(("load ml100k_mm (lazy images)", time.perf_counter() - t))
    cache = tempfile.mkdtemp(prefix="mmbench-bench-cache-")
    encs = {"image": TimmEncoder(args.image_model, progress=False)}
    for label in ("first run", "cached run"):
        t = time.perf_counter()
        feats, _, _ = build_features(encs, ds, cache)
        rows.append(
            (
                f"{args.image_model} features, {int(ds.content['image'].mask.sum())} posters, {label}",
                time.perf_counter() - t,
            )
        )
    text = {"text": SentenceTransformerEncoder(progress=False)}
    for label in ("first run", "cached run"):
        t = time.perf_counter()
        tf, _, _ = build_features(text, ds, cache)
        rows.append((f"all-MiniLM-L6-v2 text features, {ds.n_items} items, {label}", time.perf_counter() - t))
    feats.update(tf)

    torch.set_num_threads(args.train_threads)
    split = load_or_create(ds, RandomSplit(), tempfile.mkdtemp())
    models = {
        "fusion_rec early (text+image)": lambda: FusionRec(fusion=EarlyFusion()),
        "fusion_rec attention (text+image)": lambda: FusionRec(fusion=AttentionFusion()),
        "fusion_rec graph (text+image)": lambda: FusionRec(fusion=GraphFusion()),
        "vbpr (text+image)": lambda: VBPR(),
        "freedom (text+image)": lambda: FREEDOM(),
    }
    for name, make in models.items():
        m = make()
        m.set_features(feats)
        t = time.perf_counter()
        NeuralTrainer(max_epochs=3, enable_progress_bar=False).fit(m, split.train, None, Evaluator(progress=False))
        rows.append((f"{name}: one training epoch (mean of 3, batch 2048, incl. build)", (time.perf_counter() - t) / 3))

    load = os.getloadavg()
    print(
        f"\nextraction threads={args.threads}, training threads={args.train_threads}, {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, load average at the end {load[0]:.1f} / {load[1]:.1f} "
        f"/ {load[2]:.1f} (1 / 5 / 15 min)\n"
    )
    print("| step | seconds |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v:.2f} |")


if __name__ == "__main__":
    main()
