"""Run one MMRec model on a folder exported by scripts/compare_mmrec.py; runs in the peers' environment
(scripts/peers/setup.sh) with MMRec's source on the path, and imports nothing from mmbench.

    <peers venv>/bin/python scripts/peers/run_mmrec.py JOB.json

JOB.json: ``mmrec`` (MMRec's checkout: its ``src/`` is imported and is the working directory, as MMRec's
``main.py`` expects), ``data_path`` (the folder holding ``<dataset>/<dataset>.inter`` and its ``*_feat.npy``),
``dataset``, ``model`` (MMRec's name, e.g. FREEDOM), ``config`` (settings over MMRec's overall.yaml and
``configs/model/<model>.yaml``; {} = its published defaults), ``threads``, ``out``, and optionally ``grid``:
``full`` (default) or ``first`` (only the first value of each listed hyperparameter: a plumbing check),
``resume``, ``share`` and ``train_only`` (below).

As MMRec's ``quick_start``: every combination of the values listed under ``hyper_parameters`` is trained with
MMRec's own Trainer (its early stopping on ``valid_metric``, its per-epoch test evaluation). Unlike ``quick_start``,
which keeps the combination with the best *test* value, the runner keeps the one with the best validation value
(mmbench's rule: never select on test), and the weights of that combination's best validation epoch (MMRec does not
restore them). Their full score matrix goes to ``out/scores.npy`` (rows ``users.txt``, columns ``items.txt``: the
exported ids), with ``result.json`` (MMRec's own numbers for every combination).

A grid can take hours (MMRec's LATTICE: 16 combinations of up to 1,000 epochs), so each finished combination is kept
in ``out/combos/<key>.json`` (its numbers) and ``<key>.pt`` (its best validation weights), the key hashing the job
(all but ``out``, ``grid`` and ``resume``), the combination and the exported files' bytes: a job with ``resume``
true trains only the combinations not yet there (every combination starts from ``init_seed``, so the order does not
matter) and ``result.json`` says how many were ``resumed``; without it the kept combinations are deleted first, so
a re-run measures every combination again.

Several runners of one job (same ``out``, ``share`` true, on one machine) split its grid: each claims a combination
before training it (``<key>.claim``, created exclusively, holding its pid), skips those a live runner claimed, and
reads them once their ``<key>.json`` appears; a claim whose process has exited is taken over. A runner with
``train_only`` true stops after the grid (scripts/compare_mmrec.py ``--grid-workers`` starts such helpers beside
the runner that chooses and scores).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import torch

NOT_IN_KEY = ("out", "grid", "resume", "share", "train_only")  # where and how a grid runs, not what it computes
POLL_S = 5.0  # how often a runner waiting for other runners' combinations looks again


def job_digest(job: dict) -> hashlib._Hash:
    """A running hash of what a combination's result depends on besides its own values: the job (not where it
    writes, which grid it runs or whether it resumes) and the bytes of the exported interactions and features."""
    same = {k: v for k, v in job.items() if k not in NOT_IN_KEY}
    h = hashlib.sha256(json.dumps(same, sort_keys=True).encode())
    for f in sorted((Path(job["data_path"]) / job["dataset"]).iterdir()):
        if f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h


def save_atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename: an interrupted run never leaves half a file under ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def claim(path: Path) -> bool:
    """Take the claim file ``path`` for this process: True when it was free or its owner has exited (a stale claim of
    a runner that died), False while another live process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = path.read_text()
            except FileNotFoundError:  # released between the two calls: try again
                continue
            if not owner.strip().isdigit() or pid_alive(int(owner)):  # empty: its owner is writing its pid
                return False
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True


def run_grid(
    todo: list[tuple[dict, str]], done: Path, share: bool, train: Callable[[dict], tuple[dict, Any, dict]], log: Any
) -> tuple[list[dict], tuple[dict, Any, Any], dict[str, int]]:
    """Every combination of ``todo`` (``(params, key)`` pairs, in the grid's order), each either read from
    ``done/<key>.json`` (kept by an earlier run, or, with ``share``, by another runner) or trained by
    ``train(params) -> (run, model, best state)`` and kept there (``<key>.pt`` its state); with ``share`` a
    combination another live runner claimed is read once it is done. Returns the runs in the grid's order, the
    best by validation ``(run, model, state)`` (the first of equals in the grid's order; model None and state the
    ``.pt`` path unless this call trained it) and how many were ``trained``, ``resumed`` (there before) and
    ``shared``."""
    earlier = {p.name for p in done.glob("*.json")}
    found: dict[int, tuple[dict, Any, Any]] = {}
    counts = {"trained": 0, "resumed": 0, "shared": 0}
    live = None

    def rank(i: int) -> tuple[float, int]:
        return found[i][0]["best_valid"], -i

    left = list(enumerate(todo))
    while left:
        waiting = []
        for index, (params, key) in left:
            if (done / f"{key}.json").is_file():
                run = json.loads((done / f"{key}.json").read_text())
                found[index] = (run, None, done / f"{key}.pt")
                counts["resumed" if f"{key}.json" in earlier else "shared"] += 1
                log.info("===== %s: read %s (valid %.4f)", params, done / f"{key}.json", run["best_valid"])
            elif share and not claim(done / f"{key}.claim"):
                waiting.append((index, (params, key)))
            else:
                run, model, state = train(params)
                save_atomic(done / f"{key}.pt", lambda tmp, state=state: torch.save(state, tmp))
                save_atomic(done / f"{key}.json", lambda tmp, run=run: tmp.write_text(json.dumps(run, default=str)))
                (done / f"{key}.claim").unlink(missing_ok=True)
                found[index] = (run, None, done / f"{key}.pt")
                counts["trained"] += 1
                if live is None or rank(index) > rank(live[0]):  # only the best trained here stays in memory
                    live = (index, model, state)
        if waiting and len(waiting) == len(left):  # every combination left is another live runner's: wait for one
            time.sleep(POLL_S)
        left = waiting
    order = sorted(found)
    first_best = max(order, key=rank)
    chosen = (found[first_best][0], *live[1:]) if live is not None and live[0] == first_best else found[first_best]
    return [found[i][0] for i in order], chosen, counts


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    out = Path(job["out"])
    torch.set_num_threads(int(job["threads"]))
    src = Path(job["mmrec"]) / "src"
    os.chdir(src)  # MMRec reads configs/ relative to the working directory
    here = Path(__file__).resolve().parent  # holds mmbench's common.py, which would shadow MMRec's `common`
    sys.path[:] = [str(src)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    from common.trainer import Trainer
    from utils.configurator import Config
    from utils.dataloader import EvalDataLoader, TrainDataLoader
    from utils.dataset import RecDataset
    from utils.utils import get_model, init_seed

    if not torch.cuda.is_available():
        # some MMRec models (LATTICE, GRCN, MGCN, ...) call `.cuda()` unconditionally; on a machine without CUDA
        # that call keeps the tensor where it is, which is all `use_gpu: False` asks of them
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    import utils.utils as mmrec_utils

    # MMRec's build_sim divides each feature row by its norm: an item without the modality (mmbench exports a zero
    # row) gets NaN similarities, which LATTICE's learned graph spreads to every score. Those undefined entries, and
    # only those, become 0 (no similarity); models bind the name when get_model imports them, after this line.
    original_build_sim = mmrec_utils.build_sim
    mmrec_utils.build_sim = lambda context: torch.nan_to_num(original_build_sim(context), nan=0.0)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    log = logging.getLogger()
    name = job["dataset"]
    settings = {
        "data_path": str(Path(job["data_path"])) + "/",
        "USER_ID_FIELD": "userID",
        "ITEM_ID_FIELD": "itemID",
        "TIME_FIELD": "timestamp",
        "inter_file_name": f"{name}.inter",
        "vision_feature_file": "image_feat.npy",
        "text_feature_file": "text_feat.npy",
        "use_gpu": False,
        "gpu_id": 0,
        "checkpoint_dir": str(out / "saved"),
        "save_recommended_topk": False,
    } | job["config"]
    config = Config(job["model"], name, settings)
    t0 = time.perf_counter()
    dataset = RecDataset(config)
    train_ds, valid_ds, test_ds = dataset.split()
    for part in (dataset, train_ds, valid_ds, test_ds):  # as quick_start; str() also sets `inter_num`, read later
        log.info(str(part))
    train_data = TrainDataLoader(config, train_ds, batch_size=config["train_batch_size"], shuffle=True)
    valid_data = EvalDataLoader(config, valid_ds, additional_dataset=train_ds, batch_size=config["eval_batch_size"])
    test_data = EvalDataLoader(config, test_ds, additional_dataset=train_ds, batch_size=config["eval_batch_size"])
    data_s = time.perf_counter() - t0

    class BestEpochTrainer(Trainer):
        """MMRec's Trainer, also keeping the weights of the best validation epoch (the epoch its own early stopping
        reports: strictly better ``valid_metric``)."""

        best_state: dict | None = None

        def _valid_epoch(self, data):
            score, result = super()._valid_epoch(data)
            if data is valid_data and score > self.best_valid_score:  # checked before early_stopping updates it
                self.best_state = copy.deepcopy(self.model.state_dict())
            return score, result

    hypers = list(config["hyper_parameters"])
    values = [v if isinstance(v, list) else [v] for v in (config[h] for h in hypers)]
    if job.get("grid", "full") == "first":  # a plumbing check: the first value of every listed hyperparameter
        values = [v[:1] for v in values]
    combos = list(product(*values))
    done = out / "combos"
    if not job.get("resume", False):
        shutil.rmtree(done, ignore_errors=True)
    done.mkdir(parents=True, exist_ok=True)
    digest = job_digest(job)
    todo = []
    for combo in combos:
        params = dict(zip(hypers, combo, strict=True))
        h = digest.copy()
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
        todo.append((params, h.hexdigest()[:20]))

    def train(params: dict) -> tuple[dict, object, dict]:
        for h, v in params.items():
            config[h] = v
        init_seed(config["seed"])
        log.info("===== %s", params)
        train_data.pretrain_setup()
        model = get_model(config["model"])(config, train_data).to(config["device"])
        trainer = BestEpochTrainer(config, model)
        t = time.perf_counter()
        best_valid, valid_result, test_result = trainer.fit(train_data, valid_data=valid_data, test_data=test_data)
        run = {
            "params": params,
            "best_valid": float(best_valid),
            "valid": {k: float(v) for k, v in valid_result.items()},
            "test": {k: float(v) for k, v in test_result.items()},
            "epochs": len(trainer.train_loss_dict),
            "fit_s": time.perf_counter() - t,
        }
        log.info("valid %.4f, %d epochs, %.1f s", best_valid, run["epochs"], run["fit_s"])
        return run, model, trainer.best_state if trainer.best_state is not None else model.state_dict()

    runs, best, counts = run_grid(todo, done, bool(job.get("share", False)), train, log)
    if job.get("train_only", False):
        log.info("train_only: %s", counts)
        return
    run, model, state = best
    if model is None:  # the best combination was trained by an earlier run or another runner: rebuild, then load
        for h, v in run["params"].items():
            config[h] = v
        init_seed(config["seed"])
        train_data.pretrain_setup()
        model = get_model(config["model"])(config, train_data).to(config["device"])
        state = torch.load(state, map_location=config["device"], weights_only=False)
    if state is not None:
        model.load_state_dict(state)
    model.eval()
    t = time.perf_counter()
    users = torch.arange(dataset.get_user_num())
    with torch.no_grad():
        scores = torch.cat([model.full_sort_predict([u, None]).float() for u in users.split(1024)]).cpu().numpy()
    score_s = time.perf_counter() - t
    np.save(out / "scores.npy", scores.astype(np.float32))
    (out / "users.txt").write_text("".join(f"{u}\n" for u in range(scores.shape[0])))
    (out / "items.txt").write_text("".join(f"{i}\n" for i in range(scores.shape[1])))
    result = {
        "peer": "MMRec",
        "version": (Path(job["mmrec"]) / ".mmrec_commit").read_text().strip()
        if (Path(job["mmrec"]) / ".mmrec_commit").exists()
        else "unknown",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "model": job["model"],
        "config": job["config"],
        "settings": {
            k: config[k]
            for k in sorted(
                set(job["config"])
                | {
                    "epochs",
                    "learning_rate",
                    "train_batch_size",
                    "stopping_step",
                    "valid_metric",
                    "seed",
                    "embedding_size",
                }
            )
        },
        "chosen": run["params"],
        "best_valid": run["best_valid"],
        "test": run["test"],  # MMRec's own test numbers at that epoch (it masks training items only)
        "epochs": run["epochs"],
        "fit_s": run["fit_s"],  # the chosen combination's fit
        "fit_all_s": sum(r["fit_s"] for r in runs),  # every combination (MMRec's published procedure)
        "resumed": counts["resumed"],  # combinations read from an earlier run of this job (their fit_s are that run's)
        "shared": counts["shared"],  # combinations other runners of this job trained while this one ran (share)
        "data_s": data_s,
        "score_s": score_s,
        "runs": runs,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
