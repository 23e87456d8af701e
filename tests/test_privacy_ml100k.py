from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

from mmbench.config import compose, validate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "privacy_ml100k.py"
_spec = importlib.util.spec_from_file_location("privacy_ml100k", SCRIPT)
privacy_ml100k = importlib.util.module_from_spec(_spec)
sys.modules["privacy_ml100k"] = privacy_ml100k
_spec.loader.exec_module(privacy_ml100k)


def row(model, scope, eps, lr, val, test=0.0):
    return {"model": model, "scope": scope, "epsilon": eps, "lr": lr, "val/ndcg@20": val, "test/ndcg@20": test}


def test_the_curve_uses_the_learning_rate_chosen_on_validation_at_epsilon_8():
    runs = pd.DataFrame(
        [
            row("bpr", "none", math.inf, math.nan, 0.2),
            row("bpr", "model", 8.0, 0.01, 0.02, test=0.9),  # best on test, not on validation
            row("bpr", "model", 8.0, 0.05, 0.03),
            row("bpr", "model", 1.0, 0.05, 0.01),
            row("bpr", "model", 1.0, 0.01, 0.5),
            row("fusion_rec", "model", 8.0, 0.005, 0.04),
            row("fusion_rec", "model", 8.0, 0.05, 0.01),
            row("fusion_rec", "model", 2.0, 0.005, 0.001),
            row("fusion_rec", "model", 2.0, 0.05, 0.9),
        ]
    )
    got = privacy_ml100k.curve(runs)
    assert set(zip(got["model"], got["scope"], got["epsilon"], got["lr"].fillna(0), strict=True)) == {
        ("bpr", "none", math.inf, 0),
        ("bpr", "model", 8.0, 0.05),
        ("bpr", "model", 1.0, 0.05),
        ("fusion_rec", "model", 8.0, 0.005),
        ("fusion_rec", "model", 2.0, 0.005),
    }


@pytest.mark.parametrize("model", list(privacy_ml100k.MODELS))
@pytest.mark.parametrize("privacy", [["privacy=audit"], ["privacy=dp", "privacy.scope=shared"]])
def test_every_run_of_the_script_is_a_valid_config(model, privacy):
    validate(compose([*privacy_ml100k.MODELS[model], *privacy_ml100k.COMMON, *privacy]))
