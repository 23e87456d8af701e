"""Speed targets of the multimodal stage on ML-100K-MM: poster feature extraction (first run, then
cached), text features, and one training epoch of multimodal models with cached features.

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_mm_speed.py --threads 2 [--seed-models]

Uses a fresh temporary cache folder, so the first extraction really computes. ``--seed-models`` also times
one epoch and one full scoring of the seed models (trainable CNN + LSTM, nothing cached) at 32 and 64 px.
Prints a Markdown table.
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
    ap.add_argument("--seed-models", action="store_true", help="also time the seed models (minutes on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from mmbench.data.ml100k_mm import MovieLens100KMM
    from mmbench.encoders import build_features
    from mmbench.encoders.image import TimmEncoder
    from mmbench.encoders.text import SentenceTransformerEncoder
    from mmbench.evaluation.evaluator import Evaluator
    from mmbench.fusion import AttentionFusion, EarlyFusion, GraphFusion
    from mmbench.models.multimodal.freedom import FREEDOM
    from mmbench.models.multimodal.fusion_rec import FusionRec
    from mmbench.models.multimodal.vbpr import VBPR
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

    if args.seed_models:
        rows += seed_model_rows(ds, split, cache)

    load = os.getloadavg()
    print(
        f"\nextraction threads={args.threads}, training threads={args.train_threads}, {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, load average at the end {load[0]:.1f} / {load[1]:.1f} "
        f"/ {load[2]:.1f} (1 / 5 / 15 min)\n"
    )
    print("| step | seconds |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v:.2f} |")


def seed_model_rows(ds, split, cache: str) -> list[tuple[str, float]]:  # noqa: ANN001
    """One training epoch (batch 256, 24 tokens, as in the mm_ml100k grid) and one scoring of all users."""
    from mmbench.encoders import build_features
    from mmbench.encoders.image import SeedCNN
    from mmbench.encoders.text import LSTMEncoder
    from mmbench.evaluation.evaluator import Evaluator
    from mmbench.models.multimodal.seed_cnn_lstm import SeedCNNLSTM, SeedCNNLSTMPersonal
    from mmbench.training import NeuralTrainer

    rows = []
    for size in (32, 64):
        encs = {"image": SeedCNN(image_size=size, out_dim=None), "text": LSTMEncoder(max_len=24)}
        feats, _, _ = build_features(encs, ds, cache)
        for cls in (SeedCNNLSTM, SeedCNNLSTMPersonal):
            m = cls()
            m.set_features(feats)
            t = time.perf_counter()
            NeuralTrainer(max_epochs=1, batch_size=256, enable_progress_bar=False).fit(
                m, split.train, None, Evaluator(progress=False)
            )
            rows.append((f"{cls.__name__} {size} px: one epoch (batch 256, incl. build)", time.perf_counter() - t))
            t = time.perf_counter()
            Evaluator(ks=[20], metrics=["ndcg"], progress=False).evaluate(m, split.test, [split.train, split.val])
            rows.append((f"{cls.__name__} {size} px: test evaluation (ranking + RMSE)", time.perf_counter() - t))
    return rows


if __name__ == "__main__":
    main()
