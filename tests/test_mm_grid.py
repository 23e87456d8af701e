"""scripts/mm_grid.py, the multimodal grid of ML-100K-MM and ML-1M-MM: every entry composes and validates;
resuming from MLflow (runs with other image weights do not count); its tables from the runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate
from tests.helpers.mlflow_runs import log_mlflow_run

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "mm_grid.py"
_spec = importlib.util.spec_from_file_location("mm_grid", SCRIPT)
mm_grid = importlib.util.module_from_spec(_spec)
sys.modules["mm_grid"] = mm_grid  # dataclasses look their module up
_spec.loader.exec_module(mm_grid)
PROTOCOLS, entries, key, run_grid, write_tables = (
    mm_grid.PROTOCOLS,
    mm_grid.entries,
    mm_grid.key,
    mm_grid.run_grid,
    mm_grid.write_tables,
)
SPLITS = {"warm": "RandomSplit", "cold": "ColdItemSplit", "cold_user": "ColdUserSplit", "sparse": "SparseHistory"}


@pytest.mark.parametrize(("experiment", "dataset"), [("mm_ml100k", "MovieLens100KMM"), ("mm_ml1m", "MovieLens1MMM")])
def test_entries_compose_and_are_unique(tmp_path, monkeypatch, experiment, dataset):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    keys = [key(p, e, 0) for e in entries() for p in PROTOCOLS]
    assert len(keys) == len(set(keys))
    for e in entries():
        assert set(e.protocols) <= set(PROTOCOLS)
        for protocol in e.protocols:
            with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
                cfg = compose("config", overrides=[f"experiment={experiment}", *PROTOCOLS[protocol], *e.overrides])
            validate(cfg)
            assert cfg.dataset._target_.endswith(dataset) and cfg.experiment_name == f"{experiment}_lite0"
            assert (cfg.eval.candidates == "target") == (protocol == "cold")
            assert cfg.split._target_.endswith(SPLITS[protocol])
            if protocol == "sparse":  # over the warm protocol's split
                assert (cfg.split.k, cfg.split.share, cfg.split.order) == (3, 0.2, "time")
                assert cfg.split.base._target_.endswith("RandomSplit") and cfg.split.base.seed == 0
            if not e.model.startswith("seed"):
                assert cfg.encoders.image.model_name == "tf_efficientnet_lite0" and cfg.encoders.image.pretrained
        if e.model == "freedom":
            assert cfg.model._target_.endswith("FREEDOM")
            no_modality = cfg.model.modalities is not None and list(cfg.model.modalities) == []  # null: every one
            assert no_modality == (e.modalities == "none")
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
    tags.setdefault("encoder.image.weights", "pretrained")
    return log_mlflow_run(uri, "mm_ml100k_lite0", tags, metrics or {}, start, per_user, params, status)


def test_grid_resumes_from_finished_mlflow_runs(work, monkeypatch):
    _, uri = work
    log(uri, "warm", "pop", "-", "none", 0, 1)
    log(uri, "cold", "pop", "-", "none", 0, 2, status="FAILED")  # not done: run again
    log(uri, "warm", "fusionrec", "early", "none", 0, 3)  # an older run's tags: fusion_rec without modalities
    log(uri, "warm", "fusion_rec", "attention", "text+image", 1, 4)  # another seed
    log(uri, "warm", "fusion_rec", "late", "image", 0, 5, **{"encoder.image.weights": "random"})  # not these weights
    log_mlflow_run(
        uri,
        "mm_ml100k",
        {"protocol": "warm", "model": "fusion_rec", "fusion": "late", "modalities": "text", "seed": "0"},
        {},
        6,
    )  # the old experiment
    ran = []
    monkeypatch.setattr(mm_grid.pipeline, "run", lambda cfg: ran.append({**cfg.tags, "seed": cfg.seed}))
    run_grid("mm_ml100k", [0], ["warm", "cold"], [], only=["pop", "fusion_rec"])
    got = [(t["protocol"], t["model"], t["fusion"], t["modalities"]) for t in ran]
    fr = [e for e in entries() if e.model == "fusion_rec"]
    expected = [("cold", "pop", "-", "none")]
    expected += [(p, e.model, e.fusion, e.modalities) for e in fr for p in ("warm", "cold") if p in e.protocols]
    expected.remove(("warm", "fusion_rec", "-", "none"))
    assert ("warm", "fusion_rec", "late", "image") in got and ("warm", "fusion_rec", "late", "text") in got
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    assert ("warm", "fusion_rec", "-", "user demographics") in got  # entries run only on their own protocols
    assert not any(p == "cold" and "demographics" in m for p, _, _, m in got)
    assert all(t["model"] in ("pop", "fusion_rec") and t["seed"] == 0 for t in ran)  # grid names, not class names
    ran.clear()  # --only also takes rows
    run_grid("mm_ml100k", [1], ["sparse", "cold_user"], [], only=["fusion_rec / late / image", "freedom / - / none"])
    assert [(t["protocol"], t["model"], t["fusion"], t["modalities"]) for t in ran] == [
        ("sparse", "fusion_rec", "late", "image")
    ]


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
    # a run with random image weights, which would change every number of its row: left out
    log(
        uri,
        "warm",
        "fusion_rec",
        "late",
        "text",
        2,
        9,
        metrics=base | {"test/ndcg@20": 0.9},
        per_user=pu,
        **split_tags,
        **{"encoder.image.weights": "random"},
    )
    # the sparse-history protocol: its table adds the truncated users' NDCG@20
    pu_sparse = pu.assign(truncated=[1, 0])
    for i, (fusion, mods, trunc) in enumerate([("-", "none", 0.1), ("late", "image", 0.3)]):
        metrics = base | {"test/ndcg@20": 0.3, "test/truncated/ndcg@20": trunc}
        log(uri, "sparse", "fusion_rec", fusion, mods, 0, 10 + i, metrics=metrics, per_user=pu_sparse, **split_tags)
    out = tmp_path / "out"
    uri_ = mm_grid.tracking_uri("mm_ml100k")
    built = write_tables("mm_ml100k", uri_, out, "python scripts/mm_grid.py --tables-only")
    md = (out / "tables.md").read_text()
    # recall ties: both bold; ndcg: mean and sample std of 0.3 and 0.2, second best
    assert "| fusion_rec | - | none | **0.5000 ± 0.0000** | <u>0.2500 ± 0.0707</u> |" in md
    assert "| late | +0.1500 | – | – |" in md  # 0.40 - 0.25
    assert "Baseline of the tests: fusion_rec / - / none." in md
    # global mean 3: errors -1, 2; item 1 mean 2 (error 0), item 3 unseen: 3 (error 2)
    assert "| global training mean | 1.5811 |" in md and "| item training mean | 1.4142 |" in md
    runs = pd.read_csv(out / "runs.tsv", sep="\t", dtype=str)
    assert runs["protocol"].tolist() == ["warm"] * 4 + ["sparse"] * 2  # the random-weights run is not there
    runs = runs[runs["protocol"] == "warm"]
    assert runs["run_id"].tolist() == ids[2:] + ids[:2] and set(runs["model"]) == {"fusion_rec"}  # in row order
    assert runs["fusion"].tolist() == ["-", "-", "late", "late"] and runs["seed"].tolist() == ["0", "1", "0", "1"]
    assert built["warm"].rows == ["fusion_rec / - / none", "fusion_rec / late / text"]
    assert list(built) == ["warm", "sparse"] and "test/rmse" not in built["warm"].metrics  # no rating model ran
    assert "test/truncated/ndcg@20" not in built["warm"].metrics
    assert built["sparse"].metrics[:3] == ["test/recall@20", "test/ndcg@20", "test/truncated/ndcg@20"]
    assert "| fusion_rec | late | image | **0.5000** | **0.3000** | **0.3000** | **0.1000** |" in md
    assert "| fusion_rec | - | none | **0.5000** | **0.3000** | <u>0.1000</u> | **0.1000** |" in md
    assert "mm_ml100k_lite0" in md and "encoder.image.weights" in md


def test_runs_with_image_encoders_trained_in_the_run_are_kept(work):
    _, uri = work
    log(uri, "warm", "pop", "-", "none", 0, 1)
    log(uri, "warm", "seed_cnn_lstm", "concat", "text+image", 0, 2, **{"encoder.image.weights": "trained"})
    # before trainable encoders were tagged: no weights tag, the trainable SeedCNN named
    log(uri, "warm", "seed_cnn_lstm_personal", "concat", "text+image", 0, 3, **{"encoder.image": "SeedCNN"})
    run = log(uri, "warm", "pop", "-", "none", 1, 4, **{"encoder.image": "TimmEncoder"})
    mlflow.MlflowClient(uri).delete_tag(run, "encoder.image.weights")  # an untagged frozen encoder: unknown weights
    log(uri, "warm", "pop", "-", "none", 2, 5, **{"encoder.image.weights": "random"})
    runs = mm_grid.load(uri, "mm_ml100k", "pretrained")
    assert mm_grid.TRAINABLE_IMAGE == ["SeedCNN"]
    assert sorted(zip(runs["tags.model"], runs["tags.seed"], strict=True)) == [
        ("pop", "0"),
        ("seed_cnn_lstm", "0"),
        ("seed_cnn_lstm_personal", "0"),
    ]
    assert mm_grid.finished(uri, "mm_ml100k", "pretrained") >= {
        mm_grid.key("warm", e, 0) for e in mm_grid.entries() if e.model.startswith("seed_cnn_lstm")
    }
