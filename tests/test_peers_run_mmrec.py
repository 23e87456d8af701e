"""scripts/peers/run_mmrec.py: what a finished grid combination is keyed by, so an interrupted grid resumes only
where nothing it depends on changed, and how runners split a grid (the MMRec runs themselves need the peers'
environment: README, peers)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import subprocess
import sys
import time

import torch

from scripts.peers import run_mmrec
from scripts.peers.run_mmrec import claim, job_digest, run_grid, save_atomic


def test_job_digest_holds_the_job_and_the_exported_bytes_not_where_it_writes(tmp_path):
    data = tmp_path / "data" / "ml100k"
    data.mkdir(parents=True)
    (data / "ml100k.inter").write_text("userID\titemID\n0\t1\n")
    (data / "image_feat.npy").write_bytes(b"\x00\x01")
    job = {"data_path": str(tmp_path / "data"), "dataset": "ml100k", "model": "LightGCN", "config": {}, "threads": 1}
    key = job_digest(job | {"out": "a", "grid": "full"}).hexdigest()
    where = {"out": "b", "grid": "first", "resume": True, "share": True, "train_only": True}
    assert key == job_digest(job | where).hexdigest()  # same results
    assert key != job_digest(job | {"threads": 2}).hexdigest()
    assert key != job_digest(job | {"config": {"epochs": 2}}).hexdigest()
    (data / "image_feat.npy").write_bytes(b"\x00\x02")  # another export in the same folder
    assert key != job_digest(job).hexdigest()


def test_save_atomic_leaves_only_the_finished_file(tmp_path):
    path = tmp_path / "k.json"
    save_atomic(path, lambda tmp: tmp.write_text(json.dumps({"best_valid": 0.5})))
    assert json.loads(path.read_text()) == {"best_valid": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_claim_takes_a_free_or_stale_claim_and_leaves_a_live_ones(tmp_path):
    free = tmp_path / "a.claim"
    assert claim(free) and free.read_text() == str(os.getpid())
    assert not claim(free)  # this live process holds it
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "b.claim"
    stale.write_text(str(dead.pid))  # a runner that exited without releasing its claim
    assert claim(stale) and stale.read_text() == str(os.getpid())
    writing = tmp_path / "c.claim"
    writing.write_text("")  # created, its owner's pid not yet written
    assert not claim(writing)


def grid_worker(todo, done, trained_log, queue):
    """One runner of a shared grid: ``train`` records which process trained which combination."""

    def train(params):
        with open(trained_log, "a") as f:
            f.write(f"{os.getpid()} {params['lr']}\n")
        time.sleep(0.3)
        return {"params": params, "best_valid": params["valid"]}, object(), {"w": torch.tensor([params["lr"]])}

    runs, (run, model, state), counts = run_grid(todo, done, True, train, logging.getLogger())
    queue.put((runs, run, model is None, counts))


def test_runners_sharing_a_grid_train_each_combination_once_and_agree_on_the_best(tmp_path, monkeypatch):
    monkeypatch.setattr(run_mmrec, "POLL_S", 0.05)
    todo = [({"lr": lr, "valid": v}, f"k{lr}") for lr, v in [(1, 0.2), (2, 0.5), (3, 0.1), (4, 0.5), (5, 0.3)]]
    done, trained_log = tmp_path / "combos", tmp_path / "trained.txt"
    done.mkdir()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=grid_worker, args=(todo, done, trained_log, queue)) for _ in range(2)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    lines = [line.split() for line in trained_log.read_text().splitlines()]
    assert sorted(int(lr) for _, lr in lines) == [1, 2, 3, 4, 5]  # each combination trained once, by one of them
    assert len({pid for pid, _ in lines}) == 2  # and both did some
    for runs, run, _, counts in results:
        assert [r["params"]["lr"] for r in runs] == [1, 2, 3, 4, 5]  # every run, in the grid's order
        assert run["params"]["lr"] == 2  # the first of the two best (0.5) in the grid's order
        assert counts["trained"] + counts["shared"] == 5 and counts["resumed"] == 0
    (*_, first), (*_, second) = results
    assert (first["trained"], first["shared"]) == (second["shared"], second["trained"])  # what one trained, one read
    assert sorted(p.name for p in done.iterdir()) == sorted(f"k{i}.{e}" for i in range(1, 6) for e in ("json", "pt"))
    assert sorted(read for _, _, read, _ in results) == [False, True]  # only the runner that trained lr 2 kept it
    assert torch.load(done / "k2.pt")["w"].item() == 2.0


def test_a_grid_resumes_what_an_earlier_run_kept_and_ignores_claims_unless_shared(tmp_path):
    done = tmp_path / "combos"
    done.mkdir()
    (done / "k1.json").write_text(json.dumps({"params": {"lr": 1}, "best_valid": 0.9}))
    (done / "k2.claim").write_text(str(os.getppid()))  # a live process's claim, which an unshared grid ignores
    trained = []

    def train(params):
        trained.append(params["lr"])
        return {"params": params, "best_valid": 0.1}, "model", {"w": torch.zeros(1)}

    todo = [({"lr": 1}, "k1"), ({"lr": 2}, "k2")]
    runs, (run, model, state), counts = run_grid(todo, done, False, train, logging.getLogger())
    assert trained == [2] and counts == {"trained": 1, "resumed": 1, "shared": 0}
    assert run["params"]["lr"] == 1 and model is None and state == done / "k1.pt"  # the kept one is better
