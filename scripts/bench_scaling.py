"""Scaling curves: fit time, evaluation time and peak memory of every top-N and multimodal model against the number
of interactions, on synthetic data.

Each model runs in a fresh process, its sizes in ascending order; for each size: generate the data (seeded: users
uniform, items by a Zipf-like popularity, repeated pairs dropped; ``--events-per-user`` per user on average, items
``n / --events-per-item`` clipped to ``[4 x --events-per-user, --max-items]``), hold out a random 10% of the events
as test, build the model from its ``conf/model`` config, fit, then evaluate with the default evaluator (full ranking
over all items, users in batches of ``eval.batch_size``, training items masked, every test user). Neural models are
fitted for ONE epoch on the default ``trainer`` settings without validation (``fit`` is then the cost of one epoch,
graph construction included: their number of epochs is set by early stopping, not by the data size). Multimodal
models get random frozen features (``image`` 128-dim, ``text`` 384-dim, every item available). ``seed_cnn_lstm*``
are left out: they train their CNN / LSTM on raw content, whose cost ``scripts/bench_mm_speed.py`` measures.

Peak memory is the peak RSS during fit and evaluation (sampled every 5 ms) and its growth over the RSS once the data
was built. A model that refuses a size (EASE: its dense inverse would not fit; the message gives the memory needed)
or runs past ``--timeout`` is recorded as such (its larger sizes as skipped); models past ``--budget-s`` seconds of
total wall time are skipped and listed.

``--eval-users N`` evaluates a seeded random sample of N test users instead of all (at 10^7 interactions a full
ranking of every user is 2·10^10 scores per model); the table then shows the sample's seconds and, in
``eval_s_all_users``, those seconds scaled to every test user (evaluation is linear in users: batched, one pass per
batch of users).

    python scripts/bench_scaling.py --sizes 1e5,1e6 --out results/scaling        # table.md, runs.csv, scaling.png
    python scripts/bench_scaling.py --sizes 2000 --models pop,ease --out /tmp/s   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TOPN = ["pop", "random", "itemknn", "userknn", "ease", "wmf", "bpr", "lightgcn", "multivae"]
MULTIMODAL = ["fusion_rec", "vbpr", "freedom", "bm3", "lattice"]
MODELS = TOPN + MULTIMODAL
FEATURE_DIMS = {"image": 128, "text": 384}


def shape(n: int, events_per_user: int, events_per_item: int, max_items: int) -> tuple[int, int]:
    """(users, items) of a data set of ``n`` interactions."""
    return max(n // events_per_user, 10), min(max(n // events_per_item, 4 * events_per_user), max_items)


def synthetic(n: int, n_users: int, n_items: int, seed: int = 0):
    """``n`` distinct (user, item) events (fewer only if the id space is too small): users uniform, items by a
    Zipf-like popularity ``1 / (rank + 10)``; then a random 10% of them as test. Returns (train, test)."""
    from mmbench.data.interactions import Interactions

    rng = np.random.default_rng(seed)
    p = 1.0 / (np.arange(n_items) + 10.0)
    p /= p.sum()
    keys = np.zeros(0, np.int64)
    while len(keys) < n:
        m = int((n - len(keys)) * 1.2) + 100
        draw = rng.integers(0, n_users, m).astype(np.int64) * n_items + rng.choice(n_items, m, p=p)
        keys = np.unique(np.concatenate([keys, draw]))
        if len(keys) >= n_users * n_items * 0.9:
            break
    keys = rng.permutation(keys)[:n]
    users, items = (keys // n_items).astype(np.int64), (keys % n_items).astype(np.int64)
    test = rng.random(len(keys)) < 0.1

    def part(mask: np.ndarray) -> Interactions:
        k = int(mask.sum())
        return Interactions(users[mask], items[mask], np.ones(k, np.float32), np.zeros(k, np.int64), n_users, n_items)

    return part(~test), part(test)


class PeakRSS:
    """The peak resident set size (MB) of this process inside a ``with`` block, sampled every ``interval`` s from
    ``/proc/self/statm`` by a thread (``ru_maxrss`` is the peak of the whole process, earlier sizes included)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()

    @staticmethod
    def now() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.base = self.peak = self.now()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def sample_users(test, n_users: int, seed: int = 0):  # noqa: ANN001, ANN201  (Interactions)
    """The test events of a seeded random sample of ``n_users`` of its users (all of them if there are fewer)."""
    users = np.unique(test.users)
    if n_users <= 0 or len(users) <= n_users:
        return test
    return test.subset(np.isin(test.users, np.random.default_rng(seed).choice(users, n_users, replace=False)))


def measure(
    model_name: str, n: int, n_users: int, n_items: int, seed: int = 0, eval_users: int = 0, extra: tuple = ()
) -> dict:
    """One (model, size) in this process: fit and evaluation seconds (of ``eval_users`` sampled test users when > 0,
    with the seconds scaled to all of them), peak RSS and its growth over the data's."""
    import gc

    import torch
    from hydra.utils import instantiate

    from mmbench.config import compose
    from mmbench.encoders.base import ModalityFeatures
    from mmbench.evaluation.evaluator import Evaluator

    torch.set_num_threads(1)
    overrides = [
        f"model={model_name}",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "eval.progress=false",
        *extra,
    ]
    cfg = compose(overrides)
    gc.collect()
    train, test = synthetic(n, n_users, n_items, seed)
    test_users = len(np.unique(test.users))
    test = sample_users(test, eval_users, seed)
    model = instantiate(cfg.model)
    if model_name in MULTIMODAL:
        rng = np.random.default_rng(seed + 1)
        model.set_features(
            {
                m: ModalityFeatures(m, np.ones(n_items, bool), rng.standard_normal((n_items, d), dtype=np.float32))
                for m, d in FEATURE_DIMS.items()
            }
        )
    evaluator: Evaluator = instantiate(cfg.eval)
    if model.capabilities.neural:  # Lightning's import (seconds) is not the model's cost
        import pytorch_lightning  # noqa: F401
    torch.manual_seed(seed)
    with PeakRSS() as mem:
        t = time.perf_counter()
        if model.capabilities.neural:
            instantiate(cfg.trainer, checkpoint_dir=None).fit(model, train, None, evaluator)
        else:
            model.fit(train, None)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        result = evaluator.evaluate(model, test, [train])
        eval_s = time.perf_counter() - t
    return {
        "fit_s": fit_s,
        "eval_s": eval_s,
        "eval_users": result.n_users,
        "eval_s_all_users": eval_s * test_users / max(result.n_users, 1),
        "peak_rss_mb": mem.peak,
        "model_rss_mb": mem.peak - mem.base,
        "ndcg@10": result.means["ndcg@10"],
        "train_events": len(train),
    }


def child(model: str, sizes: list[tuple[int, int, int]], eval_users: int = 0, extra: tuple = ()) -> None:
    """Every size of one model, ascending, one ``SCALING`` line each (a refusal is a line too)."""
    for n, n_users, n_items in sizes:
        try:
            res = {"status": "ok", "note": ""} | measure(model, n, n_users, n_items, eval_users=eval_users, extra=extra)
        except MemoryError as e:
            res = {"status": "refused", "note": str(e)}
        except Exception as e:  # noqa: BLE001  (reported in the table; the next size still runs)
            res = {"status": "failed", "note": f"{type(e).__name__}: {e}"[:300]}
        print("SCALING " + json.dumps({"interactions": n} | res), flush=True)


def run_model(
    model: str, sizes: list[tuple[int, int, int]], timeout: float, eval_users: int = 0, extra: tuple = ()
) -> list[dict]:
    """:func:`child` in a fresh process (imports once per model); the size running at ``timeout`` is ``timeout``,
    larger ones ``skipped``; a crash is ``failed`` with the last line of its error."""
    spec = ";".join(f"{n},{u},{i}" for n, u, i in sizes)
    args = [sys.executable, __file__, "--child", model, spec, "--eval-users", str(eval_users), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t = time.time()
    timed_out = False
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
        stdout, stderr = out.stdout, out.stderr
    except subprocess.TimeoutExpired as e:
        timed_out = True
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        stderr = ""
    done = {}
    for line in stdout.splitlines():
        if line.startswith("SCALING "):
            res = json.loads(line[len("SCALING ") :])
            done[res.pop("interactions")] = res
    rows, failed = [], False
    err = stderr.strip().splitlines()
    for n, _, _ in sizes:
        if n in done:
            rows.append(done[n])
        elif failed:
            rows.append({"status": "skipped", "note": "a smaller size did not finish"})
        else:
            failed = True
            note = f"over {timeout:.0f} s (model process)" if timed_out else (err[-1][:300] if err else "no output")
            rows.append({"status": "timeout" if timed_out else "failed", "note": note})
    print(f"{model}: {time.time() - t:.0f} s", flush=True)
    return rows


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df[df.status == "ok"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    columns = [
        ("fit_s", "fit s (neural: one epoch)"),
        ("eval_s", "full-ranking evaluation s"),
        ("peak_rss_mb", "peak RSS MB"),
    ]
    for ax, (col, label) in zip(axes, columns, strict=True):
        for model, g in ok.groupby("model", sort=False):
            ax.plot(g.interactions, g[col], marker="o", label=model, linestyle="--" if model in MULTIMODAL else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("interactions")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cell(v: object) -> str:
    """A table cell: counts with thousands separators, seconds and MB to 3 significant digits (no exponent)."""
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int | np.integer) else str(v)


def markdown(df: pd.DataFrame, command: str, skipped: list[str], loads: list[float]) -> str:
    cols = ["model", "interactions", "users", "items", "status", "fit_s", "eval_s", "eval_users", "eval_s_all_users"]
    cols += ["peak_rss_mb", "model_rss_mb"]
    lines = [
        "# Scaling curves on synthetic data",
        "",
        f"Command: `{command}`; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, one "
        f"thread, niceness {os.nice(0)}; 1-minute load average at the start {loads[0]:.2f}, at the end "
        f"{loads[-1]:.2f} (the machine is shared: absolute seconds carry that load).",
        "",
        "`fit_s`: the whole fit (neural models: one epoch, graph construction included); `eval_s`: full-ranking "
        "evaluation of `eval_users` test users over all items (every test user unless `--eval-users` sampled them; "
        "`eval_s_all_users` scales the seconds to all of them); `peak_rss_mb`: the process's peak RSS; "
        "`model_rss_mb`: its growth after the data was built (fit + evaluation).",
        "",
        "| " + " | ".join(cols) + " | note |",
        "|" + "---|" * (len(cols) + 1),
    ]
    for r in df.itertuples(index=False):
        cells = [cell(getattr(r, c)) for c in cols]
        lines.append("| " + " | ".join(cells) + f" | {r.note} |")
    if skipped:
        lines += ["", "Skipped (time budget):", "", *(f"- {s}" for s in skipped)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "SIZES"), help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="1e5,1e6,1e7", help="numbers of interactions, comma-separated")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--events-per-user", type=int, default=50)
    ap.add_argument("--events-per-item", type=int, default=100)
    ap.add_argument("--max-items", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per model (all its sizes)")
    ap.add_argument("--budget-s", type=float, default=1200, help="total seconds; later (model, size) are skipped")
    ap.add_argument("--eval-users", type=int, default=0, help="evaluate this many sampled test users (0: all)")
    ap.add_argument("--out", default="results/scaling")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for every model, e.g. model.sparse=true")
    a = ap.parse_args(argv)
    if a.child:
        child(
            a.child[0],
            [tuple(int(x) for x in size.split(",")) for size in a.child[1].split(";")],
            a.eval_users,
            tuple(a.overrides),
        )
        return 0
    models = a.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise SystemExit(f"--models: unknown {unknown}; choose from {MODELS}")
    sizes = sorted(int(float(s)) for s in a.sizes.split(","))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    start, rows, skipped, loads = time.time(), [], [], [os.getloadavg()[0]]
    shapes = [(n, *shape(n, a.events_per_user, a.events_per_item, a.max_items)) for n in sizes]
    for model in models:
        left = a.budget_s - (time.time() - start)
        if left <= 0:
            skipped.append(f"{model}: every size")
            continue
        results = run_model(model, shapes, min(a.timeout, left), a.eval_users, tuple(a.overrides))
        for (n, n_users, n_items), res in zip(shapes, results, strict=True):
            rows.append({"model": model, "interactions": n, "users": n_users, "items": n_items, **res})
            print(
                f"{model:>12} n={n:>10,} {res['status']:>8} fit {res.get('fit_s', float('nan')):8.2f} s "
                f"eval {res.get('eval_s', float('nan')):8.2f} s peak {res.get('peak_rss_mb', float('nan')):8.0f} MB "
                f"{res['note'][:120]}",
                flush=True,
            )
    loads.append(os.getloadavg()[0])
    columns = ["model", "interactions", "users", "items", "status", "note", "fit_s", "eval_s", "peak_rss_mb"]
    columns += ["model_rss_mb", "eval_users", "eval_s_all_users", "ndcg@10", "train_events"]
    df = pd.DataFrame(rows).reindex(columns=columns)
    command = "python scripts/bench_scaling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    df.to_csv(out / "runs.csv", index=False)
    (out / "table.md").write_text(markdown(df, command, skipped, loads))
    if (df.status == "ok").any():
        plot(df, out / "scaling.png")
    print(f"wrote {out}/table.md, runs.csv" + (", scaling.png" if (df.status == "ok").any() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
