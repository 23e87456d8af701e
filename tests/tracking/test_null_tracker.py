"""logger=none: a run that writes no tracking store and no artifacts."""

from __future__ import annotations

from hydra import initialize_config_dir

from mmbench import pipeline
from mmbench.config import CONF_DIR, compose


def test_pipeline_run_with_logger_none_tracks_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp_path}",
                "logger=none",
                "dataset=synthetic",
                "model=pop",
                "eval.progress=false",
            ],
        )
    res = pipeline.run(cfg)
    assert 0 < res.metrics["test/ndcg@10"] < 1 and len(res.run_id) == 32 and res.artifact_uri == ""
    # only the split store (shared by every logger) is written under the work dir
    assert sorted(p.name for p in tmp_path.iterdir()) == ["splits"]
