"""Seconds per training epoch of neural models: a bare torch loop against mmbench's Lightning training loop.

For each model, on the saved split of ``--experiment`` (default ``topn_ml100k``), both sides build the model from
its config with the same seed and train ``--epochs`` epochs on the model's own batches (``train_data``), without
validation:

- ``bare``: ``zero_grad``, ``loss``, ``backward``, ``step`` per batch in a plain Python loop: torch's kernels and
  the sampler, nothing else (the floor any training loop of the same algorithm pays);
- ``trainer K``: ``NeuralTrainer.fit`` with ``trainer.batches_per_call=K``, for each ``--batches-per-call`` value;
- ``bare nn.Embedding``: the bare loop with the id tables looked up by ``nn.Embedding``'s own forward instead of
  :class:`mmbench.models.base.Embedding`'s ``index_select`` (what that lookup saves).

All leave the same weights (checked: the script fails otherwise), so the difference is the loop's overhead. The
sides alternate for ``--rounds`` rounds; the table gives each side's median seconds per epoch and its ratio to
``bare``. One torch thread unless ``--threads``::

    MMBENCH_DATA_DIR=../shared/data python scripts/bench_train_loop.py --models bpr lightgcn --out results/overhead
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers.common import mmbench_split  # noqa: E402

from mmbench.config import compose  # noqa: E402
from mmbench.models.base import Embedding  # noqa: E402


def differs(got: dict, ref: dict) -> bool:
    """Whether two state dicts hold any tensor that is not bit for bit the same."""
    return any(not torch.equal(got[key], v) for key, v in ref.items())


@contextlib.contextmanager
def torch_lookup():
    """mmbench's id tables looked up by ``nn.Embedding.forward`` (the ``bare nn.Embedding`` side)."""
    own = Embedding.forward
    Embedding.forward = torch.nn.Embedding.forward
    try:
        yield
    finally:
        Embedding.forward = own


def bare(cfg, train, epochs: int) -> tuple[float, dict]:
    """Seconds of ``epochs`` epochs of a plain loop (model build included, as in ``trainer``), and the weights."""
    import pytorch_lightning as pl

    t = time.perf_counter()
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    model = instantiate(cfg.model)
    model.build(train)
    opt = model.configure_optimizer()
    opts = opt if isinstance(opt, list) else [opt]
    batches = model.train_data(train, int(cfg.trainer.batch_size), int(cfg.seed))
    model.train()
    for _ in range(epochs):
        for batch in batches:
            for o in opts:
                o.zero_grad()
            model.loss(batch).backward()
            for o in opts:
                o.step()
    return time.perf_counter() - t, model.state_dict()


def trainer(cfg, train, epochs: int, per_call: int) -> tuple[float, dict]:
    """Seconds of ``NeuralTrainer.fit`` (Lightning's set-up and the model build included), and the weights."""
    model = instantiate(cfg.model)
    tr = instantiate(cfg.trainer, max_epochs=epochs, batches_per_call=per_call, enable_progress_bar=False)
    t = time.perf_counter()
    tr.fit(model, train)
    return time.perf_counter() - t, model.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="topn_ml100k")
    ap.add_argument("--models", nargs="+", default=["bpr", "lightgcn"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches-per-call", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="folder for train_loop.md (default: print only)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import pytorch_lightning  # noqa: F401  (imported before any timing)

    rows = []
    for m in a.models:
        cfg = compose([f"experiment={a.experiment}", f"model={m}", "logger=none", "seed=0"])
        _, split = mmbench_split(cfg)
        sides = ["bare", *[f"trainer {k}" for k in a.batches_per_call], "bare nn.Embedding"]
        times: dict[str, list[float]] = {s: [] for s in sides}
        for _ in range(a.rounds):
            ref_s, ref = bare(cfg, split.train, a.epochs)
            times["bare"].append(ref_s / a.epochs)
            for k in a.batches_per_call:
                s, got = trainer(cfg, split.train, a.epochs, k)
                if differs(got, ref):
                    raise SystemExit(f"{m}: trainer.batches_per_call={k} left other weights than the bare loop")
                times[f"trainer {k}"].append(s / a.epochs)
            with torch_lookup():
                s, got = bare(cfg, split.train, a.epochs)
            if differs(got, ref):
                raise SystemExit(f"{m}: nn.Embedding's lookup left other weights than index_select's")
            times["bare nn.Embedding"].append(s / a.epochs)
            print(m, {s: round(v[-1], 4) for s, v in times.items()}, flush=True)
        base = statistics.median(times["bare"])
        for s in sides:
            med = statistics.median(times[s])
            rows.append((m, s, med, med / base, ", ".join(f"{v:.4f}" for v in times[s])))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"`python scripts/bench_train_loop.py {' '.join(sys.argv[1:])}`: {a.experiment}, {a.epochs} epochs without "
        f"validation, {a.rounds} rounds, {a.threads} torch thread(s); {platform.machine()}, {os.cpu_count()} cores, "
        f"load average at the end {load}. Every side left the same weights as the bare loop.",
        "",
        "| model | side | s / epoch (median) | x bare | rounds |",
        "|---|---|---|---|---|",
        *[f"| {m} | {s} | {med:.4f} | {r:.2f} | {all_} |" for m, s, med, r, all_ in rows],
    ]
    print("\n".join(lines))
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "train_loop.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
