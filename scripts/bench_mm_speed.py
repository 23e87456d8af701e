"""Speed targets of the multimodal stage on ML-100K-MM or ML-1M-MM: poster feature extraction (first run, then
cached), text features, and one training epoch of the multimodal models and of BPR / LightGCN with cached features.

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_mm_speed.py --threads 2 [--seed-models]
    MMBENCH_DATA_DIR=../shared/data python scripts/bench_mm_speed.py --dataset ml1m_mm --threads 1 --cache DIR

Uses a fresh temporary cache folder unless ``--cache`` names one (then "first run" is a cache read where the
features are already there). Models are built from their conf/model defaults (``experiment=mm_<dataset>``
overrides), trained by the trainer config's batch size, one thread (``--train-threads``). ``--seed-models``
also times one epoch and one full scoring of the seed models (trainable CNN + LSTM, nothing cached) at 32 and 64
px. Prints a Markdown table.
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
    ap.add_argument("--dataset", choices=("ml100k_mm", "ml1m_mm"), default="ml100k_mm")
    ap.add_argument("--cache", default=None, help="feature cache folder (default: a fresh temporary one)")
    ap.add_argument("--image-model", default="resnet18")
    ap.add_argument("--pretrained", action="store_true", help="the image model's packaged pretrained weights")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per model; the table shows their mean")
    ap.add_argument("--models", nargs="*", default=None, help="model rows to time (default: all), e.g. vbpr")
    ap.add_argument("--seed-models", action="store_true", help="also time the seed models (minutes on a CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import pytorch_lightning  # noqa: F401  imported before any timing: the first model's fit would pay its ~4 s
    from hydra.utils import instantiate

    from mmbench.config import compose
    from mmbench.data.ml1m_mm import MovieLens1MMM
    from mmbench.data.ml100k_mm import MovieLens100KMM
    from mmbench.encoders import build_features
    from mmbench.encoders.image import TimmEncoder
    from mmbench.encoders.text import SentenceTransformerEncoder
    from mmbench.evaluation.evaluator import Evaluator
    from mmbench.splits import load_or_create
    from mmbench.splits.splitters import RandomSplit
    from mmbench.training import NeuralTrainer

    rows: list[tuple[str, float]] = []
    t = time.perf_counter()
    reader = {"ml100k_mm": MovieLens100KMM, "ml1m_mm": MovieLens1MMM}[args.dataset]
    ds = reader(os.environ["MMBENCH_DATA_DIR"], download=False).read()
    rows.append((f"load {args.dataset} (lazy images): {ds.n_users} users, {ds.n_items} items", time.perf_counter() - t))
    scratch = tempfile.TemporaryDirectory(prefix="mmbench-bench-")  # split and default cache, removed at exit
    cache = args.cache or f"{scratch.name}/cache"
    encs = {"image": TimmEncoder(args.image_model, pretrained=args.pretrained, progress=False)}
    weights = "pretrained" if args.pretrained else "random"
    for label in ("first run", "cached run"):
        t = time.perf_counter()
        feats, _, _ = build_features(encs, ds, cache)
        rows.append(
            (
                f"{args.image_model} ({weights}) features, {int(ds.content['image'].mask.sum())} posters, {label}",
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
    split = load_or_create(ds, RandomSplit(), f"{scratch.name}/splits")
    rows.append((f"warm split: {len(split.train)} training interactions", 0.0))
    experiment = {"ml100k_mm": "mm_ml100k", "ml1m_mm": "mm_ml1m"}[args.dataset]
    for name, overrides in MODELS.items():
        if args.models and name.split(" ")[0] not in args.models and name not in args.models:
            continue
        cfg = compose([f"experiment={experiment}", *overrides])
        m = instantiate(cfg.model)
        if hasattr(m, "set_features"):
            m.set_features(feats)
        batch = int(cfg.trainer.batch_size)
        t = time.perf_counter()
        NeuralTrainer(max_epochs=args.epochs, batch_size=batch, enable_progress_bar=False).fit(
            m, split.train, None, Evaluator(progress=False)
        )
        per = f"{m.users_per_batch} users" if getattr(m, "users_per_batch", None) else str(batch)
        label = f"{name}: one training epoch (mean of {args.epochs}, batch {per}, incl. build)"
        rows.append((label, (time.perf_counter() - t) / args.epochs))

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


# timed models: conf/model defaults, as the grid (scripts/mm_grid.py) runs them
FR = ["model=fusion_rec", "model.modalities=[text,image]"]
MODELS = {
    "bpr": ["model=bpr"],
    "lightgcn": ["model=lightgcn"],
    **{f"fusion_rec {f} (text+image)": [*FR, f"fusion@model.fusion={f}"] for f in ("early", "late", "attention")},
    **{f"fusion_rec {f} (text+image)": [*FR, f"fusion@model.fusion={f}"] for f in ("graph", "hybrid", "gated")},
    "fusion_rec none": ["model=fusion_rec", "model.modalities=[]"],
    "vbpr (text+image)": ["model=vbpr"],
    "freedom (text+image)": ["model=freedom"],
    "freedom none": ["model=freedom", "model.modalities=[]"],
    "multivae": ["model=multivae"],
    "bm3 (text+image)": ["model=bm3"],
    "lattice (text+image)": ["model=lattice"],
}


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
