"""The pipeline on the synthetic dataset: tracking, artifacts, test-once, reproducibility."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from mlflow.tracking import MlflowClient

from mmbench import pipeline
from mmbench.config import CONF_DIR, ConfigError, compose
from mmbench.data.readers import file_sha256
from mmbench.encoders import ModalityFeatures
from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.neural.bpr import BPR
from mmbench.tracking import TrackingError
from tests.helpers.config import cfg_for


def test_run_logs_config_metrics_tags_and_artifacts(tmp_path):
    res = pipeline.run(cfg_for(tmp_path, "model=pop"))
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    assert m["test/ndcg_at_10"] == pytest.approx(res.metrics["test/ndcg@10"])
    assert {"val/recall_at_20", "time/fit_s", "time/eval_test_s", "memory/peak_rss_mb"} <= set(m)
    tags = run.data.tags
    assert tags["model"] == "pop" and tags["dataset"] == "synthetic" and tags["seed"] == "0"
    assert tags["split_fingerprint"] == res.split.fingerprint and tags["git_commit"]
    assert run.data.params["model._target_"] == "mmbench.models.topn.pop.Pop"
    art = Path(urlparse(res.artifact_uri).path)
    assert art.is_relative_to(tmp_path / "mlartifacts")
    for f in [
        "config.yaml",
        "metrics/per_user_test.tsv",
        "recommendations/test_topk.tsv",
        "split/split.json",
    ]:
        assert (art / f).is_file(), f
    # the split files are stored once (the split folder) and referenced, not copied into the run
    assert not (art / "split" / "train.tsv").exists()
    meta = json.loads((art / "split" / "split.json").read_text())
    assert meta["fingerprint"] == res.split.fingerprint and Path(meta["directory"]) == res.split.directory.resolve()
    assert str(res.split.directory) == tags["split_dir"]
    assert all((Path(meta["directory"]) / f"{p}.tsv").is_file() for p in ("train", "val", "test"))
    top = pd.read_csv(art / "recommendations/test_topk.tsv", sep="\t")
    assert list(top.columns) == ["user", "rank", "item", "score"]
    assert top["rank"].min() == 1 and top["rank"].max() == 20
    per_user = pd.read_csv(art / "metrics/per_user_test.tsv", sep="\t")
    assert per_user["ndcg@10"].mean() == pytest.approx(res.metrics["test/ndcg@10"])
    assert len(per_user) == res.metrics["test/n_users"]


def test_a_neural_runs_val_metrics_are_those_of_the_restored_weights(tmp_path):
    # Lightning logs val/<metric> every epoch at its global step; the run's value (MLflow's, at the highest step)
    # must be the pipeline's evaluation of the restored best weights, not the last epoch's
    res = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=4", "trainer.batch_size=256"))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    history = client.get_metric_history(res.run_id, "val/ndcg_at_10")
    assert len(history) == 4 + 1  # one per epoch + the final evaluation
    final = max(history, key=lambda m: m.step)
    assert final.value == pytest.approx(res.metrics["val/ndcg@10"], abs=1e-12)
    assert final.step == res.metrics["fit/steps"] + 1 > max(m.step for m in history if m is not final)
    assert client.get_run(res.run_id).data.metrics["val/ndcg_at_10"] == pytest.approx(res.metrics["val/ndcg@10"])
    assert res.metrics["fit/best_val_monitor"] == pytest.approx(res.metrics["val/ndcg@10"])  # the monitor


def test_models_share_the_saved_split(tmp_path):
    a = pipeline.run(cfg_for(tmp_path, "model=pop"))
    b = pipeline.run(cfg_for(tmp_path, "model=random", "seed=3"))
    assert a.split.fingerprint == b.split.fingerprint and a.split.directory == b.split.directory
    assert b.metrics["test/ndcg@10"] < a.metrics["test/ndcg@10"]


def test_test_set_is_evaluated_once_after_fit(tmp_path, monkeypatch):
    calls = []
    real = Evaluator.evaluate

    def spy(self, model, target, exclude=(), keep_topk=False, desc=""):
        calls.append((desc, len(exclude)))
        return real(self, model, target, exclude, keep_topk, desc)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    res = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=2"))
    assert calls == [("validation", 1), ("test", 2)]
    assert res.metrics["fit/epochs"] == 2


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    a = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=3"))
    b = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=3"))
    c = pipeline.run(cfg_for(tmp_path, "model=bpr", "trainer.max_epochs=3", "seed=1"))
    keys = [k for k in a.metrics if k.startswith(("val/", "test/"))]
    assert {k: a.metrics[k] for k in keys} == {k: b.metrics[k] for k in keys}
    assert a.metrics["test/ndcg@20"] != c.metrics["test/ndcg@20"]


def test_unusable_tracking_store_fails_before_any_work(tmp_path, monkeypatch):
    from mmbench.data.synthetic import Synthetic

    def must_not_run(self):
        raise AssertionError("data was loaded before the tracking store was checked")

    monkeypatch.setattr(Synthetic, "read", must_not_run)
    (tmp_path / "file").write_text("")
    cfg = cfg_for(tmp_path, f"logger.tracking_uri=sqlite:///{tmp_path}/file/mlflow.db")
    with pytest.raises(TrackingError, match="not usable"):
        pipeline.run(cfg)


def test_fusion_is_tagged_by_its_config_option(tmp_path):
    cfg = cfg_for(tmp_path, "model=fusion_rec", "fusion@model.fusion=attention")
    assert pipeline.run_tags(cfg, "fusion_rec")["fusion"] == "attention"
    assert "fusion" not in pipeline.run_tags(cfg_for(tmp_path, "model=bpr"), "bpr")
    no_content = cfg_for(tmp_path, "model=fusion_rec", "model.modalities=[]", "+tags.fusion='-'")
    assert pipeline.run_tags(no_content, "fusion_rec")["fusion"] == "-"  # an explicit tag wins


def test_user_features_reach_fusion_rec_on_the_cold_user_split(tmp_path):
    res = pipeline.run(
        cfg_for(
            tmp_path,
            "model=fusion_rec",
            "split=cold_user",
            "+encoder@user_encoders.profile=multihot",
            "model.user_id_embedding=false",
            "trainer.max_epochs=3",
        )
    )
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id)
    # composed outside the CLI, the run is still named by its conf/model option, not the class (FusionRec)
    assert run.data.tags["model"] == "fusion_rec" and run.info.run_name == "fusion_rec-synthetic-seed0"
    assert run.data.tags["user_encoder.profile"] == "MultiHotEncoder"
    assert run.data.params["model.user_id_embedding"] == "False"
    m = res.metrics
    assert m["test/n_users"] == 30 and m["val/n_users"] == 30  # 10% + 10% of the 300 users, held out entirely
    # no user id embedding: 400 item vectors + the projection of the 8-dim profile to 64 dims
    assert m["model/n_params"] == 400 * 64 + 8 * 64 + 64
    assert "time/encode_user_profile_s" in m and "time/encode_s" in m
    with pytest.raises(ValueError, match="user_id_embedding=false needs user features"):
        pipeline.run(cfg_for(tmp_path, "model=fusion_rec", "model.user_id_embedding=false"))


def test_models_without_user_features_ignore_them_with_a_warning(caplog):
    feats = {"profile": ModalityFeatures("profile", np.ones(3, bool), np.zeros((3, 2), np.float32))}
    with caplog.at_level("WARNING", logger="mmbench.pipeline"):
        pipeline.give_user_features(BPR(), feats)
    assert "BPR uses no user features: user_encoders ['profile'] are ignored" in caplog.text


def test_target_candidates_on_a_warm_split_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="RandomSplit.*reveals them.*eval.force_candidates=true"):
        pipeline.run(cfg_for(tmp_path, "model=pop", "eval.candidates=target"))
    assert not (tmp_path / "splits").exists() and not (tmp_path / "mlflow.db").exists()  # nothing ran
    res = pipeline.run(cfg_for(tmp_path, "model=pop", "eval.candidates=target", "eval.force_candidates=true"))
    tags = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.tags
    assert tags["eval.forced_candidates"] == "true"
    cold = pipeline.run(cfg_for(tmp_path, "model=pop", "eval.candidates=target", "split=cold_item"))
    assert (
        "eval.forced_candidates" not in MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(cold.run_id).data.tags
    )


def test_a_model_its_constructor_refuses_fails_before_any_work(tmp_path):
    # BPR's sparse gradients train with SparseAdam, which has no weight decay: the constructor refuses, and the run
    # stops there, before the tracking store, the data or the split (formerly after reading and splitting the data)
    from hydra.errors import InstantiationException

    with pytest.raises(InstantiationException, match="(?s)BPR.*SparseAdam.*weight_decay"):
        pipeline.run(cfg_for(tmp_path, "model=bpr", "model.sparse=true", "+model.optimizer.weight_decay=0.1"))
    assert not (tmp_path / "splits").exists() and not (tmp_path / "mlflow.db").exists()  # nothing ran


def test_per_user_files_carry_the_evaluators_sparse_flag(tmp_path):
    res = pipeline.run(cfg_for(tmp_path, "model=pop"))
    art = Path(urlparse(res.artifact_uri).path)
    for part in ("val", "test"):
        per_user = pd.read_csv(art / "metrics" / f"per_user_{part}.tsv", sep="\t")
        assert set(per_user["sparse"]) <= {0, 1}
        flagged = per_user[per_user["sparse"] == 1]
        assert len(flagged) == res.metrics[f"{part}/sparse/n_users"]
        assert flagged["ndcg@10"].mean() == pytest.approx(res.metrics[f"{part}/sparse/ndcg@10"])


def test_per_user_files_flag_the_splits_user_groups(tmp_path):
    """split=sparse_history: a ``truncated`` 0/1 column, the users of the split's group, whose mean is the logged
    ``test/truncated/<metric>``."""
    res = pipeline.run(cfg_for(tmp_path, "model=pop", "split=sparse_history", "split.k=1"))
    per_user = pd.read_csv(Path(urlparse(res.artifact_uri).path) / "metrics" / "per_user_test.tsv", sep="\t")
    members = set(res.split.groups["truncated"].tolist())
    flagged = per_user[per_user["truncated"] == 1]
    assert 0 < len(flagged) == res.metrics["test/truncated/n_users"] <= len(members)
    assert flagged["ndcg@10"].mean() == pytest.approx(res.metrics["test/truncated/ndcg@10"])


def test_model_name_is_the_option_or_given_and_a_raw_compose_fails_before_work(tmp_path):
    res = pipeline.run(cfg_for(tmp_path, "model=pop", "model_name=pop_variant"))
    assert MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id).data.tags["model"] == "pop_variant"
    assert compose(["model=seed_cnn_lstm_personal"]).model_name == "seed_cnn_lstm_personal"
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        raw = hydra_compose("config", overrides=[f"paths.work_dir={tmp_path / 'raw'}", "model=fusion_rec"])
    if HydraConfig.initialized():  # a Hydra run earlier in this process (e.g. a sweep test) left its config
        HydraConfig.instance().cfg = None
    with pytest.raises(ConfigError, match=r"compose the config with mmbench.config.compose"):
        pipeline.run(raw)
    assert not (tmp_path / "raw").exists()


def test_terminal_table_aligns_long_metric_names():
    table = pipeline.format_table({"val/ndcg@10": 0.5, "test/ndcg@10": 0.25, "test/sparse/precision@20": 0.125})
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "val", "test"]
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header: columns line up
    assert lines[2].split() == ["ndcg@10", "0.5000", "0.2500"] and lines[3].split() == [
        "sparse/precision@20",
        "nan",
        "0.1250",
    ]


def test_data_stage_is_read_once_per_process_and_never_shared(tmp_path, data_dir, monkeypatch):
    """Jobs of one process reuse the dataset and split (same config, same file digests), each with its own arrays: a
    model that writes into its training data cannot change a later job; a changed data file is read anew."""
    from mmbench.data.ml100k import MovieLens100K

    folder = tmp_path / "data" / "movielens" / "ml-100k"
    folder.mkdir(parents=True)
    for name in ("u.data", "u.item", "u.user"):
        shutil.copy(data_dir / "movielens" / "ml-100k" / name, folder / name)
    reads = []
    original = MovieLens100K.read
    monkeypatch.setattr(MovieLens100K, "read", lambda self: reads.append(1) or original(self))
    monkeypatch.setattr(pipeline, "_DATASETS", {})
    monkeypatch.setattr(pipeline, "_SPLITS", {})
    cfg = cfg_for(
        tmp_path, "dataset=ml100k", f"paths.data_dir={tmp_path / 'data'}", "split=kfold", "model=baseline_only"
    )
    hashed = []
    monkeypatch.setattr(pipeline, "file_sha256", lambda path: hashed.append(Path(path).name) or file_sha256(path))
    monkeypatch.setattr(pipeline, "_VERIFIED", {})
    monkeypatch.setattr(pipeline, "_now_ns", lambda: time.time_ns() + 10**10)  # the copies' ctime is settled
    first = pipeline.run(cfg)
    ds, split = pipeline.load_data(cfg)
    assert len(reads) == 1 and split.fingerprint == first.split.fingerprint
    assert sorted(hashed) == ["u.data", "u.item", "u.user"]  # verified once at the first reuse
    pipeline.load_data(cfg)
    assert len(hashed) == 3  # then by the unchanged stat stamps
    train = split.train.ratings.copy()
    split.train.ratings[:] = 1.0  # a careless model
    ds.interactions.ratings[:] = 1.0
    second = pipeline.run(cfg)
    assert len(reads) == 1
    np.testing.assert_array_equal(second.split.train.ratings, train)
    assert second.metrics["test/rmse"] == first.metrics["test/rmse"]
    lines = (folder / "u.data").read_text().splitlines()
    u, i, r, t = lines[0].split("\t")
    lines[0] = "\t".join([u, i, str(int(r) % 5 + 1), t])  # another rating: same size
    before = (folder / "u.data").stat()
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    os.utime(folder / "u.data", ns=(before.st_atime_ns, before.st_mtime_ns))  # and the old mtime: the ctime moves
    assert (folder / "u.data").stat().st_size == before.st_size
    ds3, split3 = pipeline.load_data(cfg)
    assert len(reads) == 2 and split3.fingerprint != split.fingerprint


@pytest.mark.parametrize(
    "overrides", [["experiment=surprise_ml100k", "model=knn_basic"], ["experiment=mm_ml100k"], ["model=bpr"]]
)
def test_config_yaml_is_what_omegaconf_saves(tmp_path, overrides):
    """The run's config.yaml, written from the config resolved once (also flattened into the params), is byte for
    byte the file ``OmegaConf.save(cfg, resolve=True)`` writes, and the params are those of the DictConfig."""
    from omegaconf import OmegaConf

    from mmbench.config import flatten

    cfg = compose(overrides)
    OmegaConf.save(cfg, tmp_path / "saved.yaml", resolve=True)
    resolved = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert pipeline.config_yaml(resolved).encode() == (tmp_path / "saved.yaml").read_bytes()
    assert flatten(resolved) == flatten(cfg)
