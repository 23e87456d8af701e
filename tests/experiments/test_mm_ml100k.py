"""The ML-100K-MM grid: every entry composes and validates; tables by hand on a two-run record."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate
from mmbench.experiments.mm_ml100k import PROTOCOLS, entries, key, load_rows, sparse_user_ndcg, tables


def test_entries_compose_and_are_unique(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    keys = [key(p, e, 0) for e in entries() for p in PROTOCOLS]
    assert len(keys) == len(set(keys))
    for e in entries():
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=["experiment=mm_ml100k", *PROTOCOLS["cold"], *e.overrides])
        validate(cfg)
        assert cfg.eval.candidates == "target"
        if e.model.startswith("seed"):
            assert cfg.encoders.image._target_.endswith("SeedCNN") and cfg.encoders.image.out_dim is None


def write_run(tmp_path, name, model, mods, ndcgs):
    split = tmp_path / "split"
    split.mkdir(exist_ok=True)
    # users 1 and 2 have 1 training event, users 3 and 4 have 3: the lowest quartile is {1, 2}
    ratings = [1, 2, 3, 3, 3, 4, 4, 4]  # mean 3; item k has rating ratings[k]
    pd.DataFrame({"user": [1, 2, 3, 3, 3, 4, 4, 4], "item": range(8), "rating": ratings, "timestamp": 0}).to_csv(
        split / "train.tsv", sep="\t", index=False
    )
    pd.DataFrame({"user": [1, 2], "item": [1, 99], "rating": [2, 5], "timestamp": 0}).to_csv(
        split / "test.tsv", sep="\t", index=False
    )
    art = tmp_path / name / "metrics"
    art.mkdir(parents=True)
    pd.DataFrame({"user": [1, 2, 3, 4], "ndcg@20": ndcgs}).to_csv(art / "per_user_test.tsv", sep="\t", index=False)
    metrics = {"test/ndcg@20": sum(ndcgs) / 4, "test/recall@20": 0.5, "time/fit_s": 2.0, "time/eval_test_s": 0.1}
    return {
        "key": name,
        "protocol": "warm",
        "model": model,
        "fusion": "early" if mods != "none" else "-",
        "modalities": mods,
        "seed": 0,
        "run_id": name,
        "artifact_uri": (tmp_path / name).as_uri(),
        "split_dir": str(split),
        "split_fingerprint": "abc" * 10,
        "overrides": [],
        "metrics": metrics,
    }


def test_sparse_bucket_and_tables_by_hand(tmp_path):
    rows = [
        write_run(tmp_path, "a", "fusion_rec", "none", [0.0, 0.2, 0.4, 0.6]),
        write_run(tmp_path, "b", "fusion_rec", "text", [0.4, 0.6, 0.4, 0.6]),
    ]
    assert sparse_user_ndcg(rows[0]) == pytest.approx(0.1)
    record = tmp_path / "runs.jsonl"
    record.write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = tables(load_rows(record))
    assert "| fusion_rec | - | none | 0.5000 (n=1) | 0.3000 (n=1) | 0.1000 (n=1) |" in md
    assert "| early | +0.2000 | - | - |" in md  # text adds 0.5 - 0.3 NDCG@20
    # global mean 3: errors -1, 2 -> sqrt(5/2); item means: item 1 -> 2 (error 0), item 99 unseen -> 3 (error 2)
    assert f"global training mean {(5 / 2) ** 0.5:.4f}, of each item's training mean {2**0.5:.4f}" in md
