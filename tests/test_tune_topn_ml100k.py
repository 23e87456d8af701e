"""scripts/tune_topn_ml100k.py: its neural searches stop early as the experiment's runs do; a typo fails first."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from mmbench.config import compose

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tune_topn_ml100k.py"


def test_neural_trainer_uses_the_callbacks_config(tmp_path):
    spec = importlib.util.spec_from_file_location("tune_topn_ml100k", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cfg = compose(["experiment=topn_ml100k", "callbacks.early_stopping.patience=7"])
    trainer = mod.neural_trainer(cfg, str(tmp_path))
    stopper = trainer.early_stopping(monitor="val/ndcg@10", mode="max")
    assert stopper.patience == 7  # from conf/callbacks, not NeuralTrainer's default (5)
    assert compose(["experiment=topn_ml100k"]).callbacks.early_stopping.patience == 10  # the searches' documented value
    assert trainer.checkpoint(dirpath=str(tmp_path)).save_top_k == 1
    assert trainer.seed == 0


def test_unknown_model_fails_before_any_work(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--experiment", "mm_ml1m", "bpr", "lightgcm"],
        capture_output=True,
        text=True,
        env={**os.environ, "MMBENCH_DATA_DIR": str(tmp_path)},  # an empty folder: reading data would fail differently
    )
    assert r.returncode == 2
    assert "unknown model(s) ['lightgcm']" in r.stderr
