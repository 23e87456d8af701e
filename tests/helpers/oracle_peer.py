"""A stand-in for scripts/peers/run_{recbole,mmrec}.py in tests: it reads the job and the exported split, and writes
the runner's outputs (``scores.npy``, ``users.txt``, ``items.txt``, ``result.json``) for an oracle that scores each
user's test items 1 and every other item 0, so mmbench's evaluation of its scores is known (NDCG@20 = 1 whenever
no user has more than 20 test items)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    if job.get("train_only"):  # a grid helper (scripts/compare_mmrec.py --grid-workers): it only leaves its mark
        (Path(job["out"]) / f"helper-{Path(job_file).stem}.done").write_text(job_file)
        return
    folder = Path(job["data_path"]) / job["dataset"]
    if "mmrec" in job:  # MMRec: one .inter file, contiguous ids, x_label 2 = test
        inter = pd.read_csv(folder / f"{job['dataset']}.inter", sep="\t")
        users, items = inter["userID"].to_numpy(), inter["itemID"].to_numpy()
        test = inter["x_label"].to_numpy() == 2
    else:  # RecBole: one file per part, raw ids as tokens
        parts = {
            p: pd.read_csv(folder / f"{job['dataset']}.{p}.inter", sep="\t", dtype=str)
            for p in ("train", "valid", "test")
        }
        inter = pd.concat(parts.values(), ignore_index=True)
        users, items = inter.iloc[:, 0].to_numpy(), inter.iloc[:, 1].to_numpy()
        test = np.repeat([False, False, True], [len(p) for p in parts.values()])
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    scores = np.zeros((len(user_ids), len(item_ids)), np.float32)
    scores[u[test], i[test]] = 1.0
    out = Path(job["out"])
    np.save(out / "scores.npy", scores)
    (out / "users.txt").write_text("".join(f"{x}\n" for x in user_ids))
    (out / "items.txt").write_text("".join(f"{x}\n" for x in item_ids))
    result = {
        "version": "oracle",
        "settings": job["config"],
        "test": {"ndcg@20": 1.0, "recall@20": 1.0, "ndcg@10": 1.0},
        "epochs": job["config"].get("epochs"),
        "fit_s": 0.5,
        "fit_all_s": 1.5,
        "chosen": {},
        "runs": [{}],
    }
    (out / "result.json").write_text(json.dumps(result))


def printed_table(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the markdown table printed right after the line that contains ``header``, by column name."""
    lines = text[text.index(header) :].splitlines()[1:]
    names = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def compare(script: Any, extra: list[str], tmp: Path, monkeypatch: Any, capsys: Any, side: str) -> list[dict]:
    """Run a comparison script's ``main`` on the synthetic dataset (``experiment=quick``, BPR, seeds 0 and 1, one
    epoch) with this oracle in the peer's place, check its printed tables, and return the peer's two jobs. The peer's
    rows must be mmbench's evaluation of the oracle's scores (1.0), every seed runs both sides, and the summary
    reports both seeds."""
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp / "work"))
    monkeypatch.setattr(script, "RUNNER", Path(__file__))
    argv = ["--peer-python", sys.executable, "--experiment", "quick", "--models", "bpr", "--profiles", "mmbench"]
    argv += [*extra, "--seeds", "0", "1", "--epochs", "1", "--out", str(tmp / "out")]
    monkeypatch.setattr(sys, "argv", ["compare", *argv])
    script.main()
    text = capsys.readouterr().out
    rows = printed_table(text, "; every metric by mmbench's evaluator")  # the final table's header
    assert [(r["side"], r["seed"]) for r in rows] == [("mmbench", "0"), (side, "0"), ("mmbench", "1"), (side, "1")]
    for mm, peer in (rows[:2], rows[2:]):
        assert (peer["NDCG@20"], peer["Recall@20"], peer["NDCG@10"]) == ("1.0000", "1.0000", "1.0000")
        assert peer["test users"] == mm["test users"] == "300"  # synthetic: every user has test events
        assert mm["epochs"] == "1" and float(mm["NDCG@20"]) < 0.5  # one epoch of BPR is no oracle
    summary = printed_table(text, "mean ± sd over seeds 0 1")
    assert [(r["side"], r["seeds"], r["NDCG@20"]) for r in summary][1] == (side, "0 1", "1.0000 ± 0.0000")
    return [json.loads((tmp / "out" / "runs" / f"bpr-mmbench-seed{s}" / "job.json").read_text()) for s in (0, 1)]


if __name__ == "__main__":
    main(sys.argv[1])
