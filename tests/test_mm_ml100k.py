"""scripts/mm_ml100k.py, the ML-100K-MM grid: every entry composes and validates; resuming from MLflow; its
tables from the runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate
from tests.helpers.mlflow_runs import log_mlflow_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mm_ml100k.py"
_spec = importlib.util.spec_from_file_location("mm_ml100k", SCRIPT)
mm_ml100k = importlib.util.module_from_spec(_spec)
sys.modules["mm_ml100k"] = mm_ml100k  # dataclasses look their module up
_spec.loader.exec_module(mm_ml100k)
PROTOCOLS, entries, key, run_grid, write_tables = (
    mm_ml100k.PROTOCOLS,
    mm_ml100k.entries,
    mm_ml100k.key,
    mm_ml100k.run_grid,
    mm_ml100k.write_tables,
)


def test_entries_compose_and_are_unique(tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    keys = [key(p, e, 0) for e in entries() for p in PROTOCOLS]
    assert len(keys) == len(set(keys))
    for e in entries():
        assert set(e.protocols) <= set(PROTOCOLS)
        for protocol in e.protocols:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose("config", overrides=["experiment=mm_ml100k", *PROTOCOLS[protocol], *e.overrides])
            validate(cfg)
            assert (cfg.eval.candidates == "target") == (protocol == "cold")
            assert cfg.split._target_.endswith(
                {"warm": "RandomSplit", "cold": "ColdItemSplit"}.get(protocol, "ColdUserSplit")
            )
        if e.model.startswith("seed"):
            assert cfg.encoders.image._target_.endswith("SeedCNN") and cfg.encoders.image.out_dim is None
        if "demographics" in e.modalities:
            assert "demographics" in cfg.user_encoders
            assert cfg.model.user_id_embedding == ("no user id" not in e.modalities)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """An empty work dir whose MLflow store the grid uses by default."""
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path, f"sqlite:///{tmp_path}/mlflow.db"


def log(uri, protocol, model, fusion, mods, seed, start, status="FINISHED", metrics=None, per_user=None, **more):
    tags = {"protocol": protocol, "model": model, "fusion": fusion, "modalities": mods, "seed": str(seed), **more}
    params = {"eval.sparse_quantile": "0.25"}
    return log_mlflow_run(uri, "mm_ml100k", tags, metrics or {}, start, per_user, params, status)


def test_grid_resumes_from_finished_mlflow_runs(work, monkeypatch):
    _, uri = work
    log(uri, "warm", "pop", "-", "none", 0, 1)
    log(uri, "cold", "pop", "-", "none", 0, 2, status="FAILED")  # not done: run again
    log(uri, "warm", "fusionrec", "early", "none", 0, 3)  # an older run's tags: fusion_rec without modalities
    log(uri, "warm", "fusion_rec", "attention", "text+image", 1, 4)  # another seed
    ran = []
    monkeypatch.setattr(mm_ml100k.pipeline, "run", lambda cfg: ran.append({**cfg.tags, "seed": cfg.seed}))
    run_grid([0], ["warm", "cold"], [], only=["pop", "fusion_rec"])
    got = [(t["protocol"], t["model"], t["fusion"], t["modalities"]) for t in ran]
    fr = [e for e in entries() if e.model == "fusion_rec"]
    expected = [("cold", "pop", "-", "none")]
    expected += [(p, e.model, e.fusion, e.modalities) for e in fr for p in ("warm", "cold") if p in e.protocols]
    expected.remove(("warm", "fusion_rec", "-", "none"))
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    assert ("warm", "fusion_rec", "-", "user demographics") in got  # entries run only on their own protocols
    assert not any(p == "cold" and "demographics" in m for p, _, _, m in got)
    assert all(t["model"] in ("pop", "fusion_rec") and t["seed"] == 0 for t in ran)  # grid names, not class names


def test_tables_md_and_runs_tsv_from_the_store(work, tmp_path):
    work_dir, uri = work
    split = work_dir / "split"
    split.mkdir()
    pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [2, 4], "timestamp": 0}).to_csv(
        split / "train.tsv", sep="\t", index=False
    )
    pd.DataFrame({"user": [1, 2], "item": [1, 3], "rating": [2, 5], "timestamp": 0}).to_csv(
        split / "test.tsv", sep="\t", index=False
    )
    base = {"test/recall@20": 0.5, "test/sparse/ndcg@20": 0.1, "time/fit_s": 1.0, "time/eval_test_s": 0.1}
    pu = pd.DataFrame({"user": ["1", "2"], "recall@20": [0.4, 0.6], "ndcg@20": [0.2, 0.4], "sparse": [1, 0]})
    split_tags = {"split_fingerprint": "f" * 64, "split_dir": str(split)}
    ids = []
    for i, (model, fusion, mods, seed, ndcg) in enumerate(
        [
            ("fusion_rec", "late", "text", 0, 0.45),  # run first, listed after the baseline (the grid's order)
            ("fusion_rec", "late", "text", 1, 0.35),
            ("fusionrec", "early", "none", 0, 0.30),  # older tags, read as fusion_rec / - / none
            ("fusion_rec", "-", "none", 1, 0.20),
        ]
    ):
        metrics = base | {"test/ndcg@20": ndcg}
        ids.append(log(uri, "warm", model, fusion, mods, seed, 1 + i, metrics=metrics, per_user=pu, **split_tags))
    out = tmp_path / "out"
    built = write_tables(mm_ml100k.tracking_uri(), out, "python scripts/mm_ml100k.py --tables-only")
    md = (out / "tables.md").read_text()
    # recall ties: both bold; ndcg: mean and sample std of 0.3 and 0.2, second best
    assert "| fusion_rec | - | none | **0.5000 ± 0.0000** | <u>0.2500 ± 0.0707</u> |" in md
    assert "| late | +0.1500 | – | – |" in md  # 0.40 - 0.25
    assert "Baseline of the tests: fusion_rec / - / none." in md
    # global mean 3: errors -1, 2; item 1 mean 2 (error 0), item 3 unseen: 3 (error 2)
    assert "| global training mean | 1.5811 |" in md and "| item training mean | 1.4142 |" in md
    runs = pd.read_csv(out / "runs.tsv", sep="\t", dtype=str)
    assert runs["run_id"].tolist() == ids[2:] + ids[:2] and set(runs["model"]) == {"fusion_rec"}  # in row order
    assert runs["fusion"].tolist() == ["-", "-", "late", "late"] and runs["seed"].tolist() == ["0", "1", "0", "1"]
    assert built["warm"].rows == ["fusion_rec / - / none", "fusion_rec / late / text"]
    assert list(built) == ["warm"] and "test/rmse" not in built["warm"].metrics  # no rating model ran
