"""Run configs for tests: the synthetic data set, every store under ``tmp_path``."""

from __future__ import annotations

from mmbench.config import compose


def cfg_for(tmp_path, *overrides):
    return compose(
        [
            f"paths.work_dir={tmp_path}",
            f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            "dataset=synthetic",
            "eval.progress=false",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
    )
