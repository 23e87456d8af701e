"""scripts/compare_cornac.py: the split it exports, and that mmbench's evaluator reproduces Cornac's protocol."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mmbench.data.synthetic import Synthetic
from mmbench.evaluation.evaluator import Evaluator

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_cornac.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_cornac", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def data():
    return Synthetic(n_users=40, n_items=60, interactions_per_user=12, seed=3).read()


def test_ratio_split_is_disjoint_and_drops_unknowns(script, data):
    train, test = script.ratio_split(data, 0.2, 7)
    inter = data.interactions
    key = lambda x: set(zip(x.users.tolist(), x.items.tolist(), strict=True))  # noqa: E731
    assert not key(train) & key(test)
    assert len(train) == len(inter) - round(0.2 * len(inter))
    assert len(test) <= round(0.2 * len(inter))
    assert set(test.users) <= set(train.users) and set(test.items) <= set(train.items)
    unknown = script.unknown_items(train)
    never = np.flatnonzero(np.bincount(train.items, minlength=train.n_items) == 0)
    assert len(unknown) == train.n_users * len(never) and set(unknown.items) == set(never)


def test_mmbench_evaluator_reproduces_cornacs_evaluation(script, data, tmp_path):
    pytest.importorskip("cornac")
    train, test = script.ratio_split(data, 0.2, 7)
    paths = script.export(data, {"train": train, "test": test}, tmp_path)
    res = script.run_cornac(paths, 1)
    ev = Evaluator(ks=[10], metrics=["auc", "map_full", "ndcg", "precision", "recall"], positive_threshold=4.0)
    ev.progress = False
    exclude = [train.subset(train.ratings >= 4.0), script.unknown_items(train)]
    r = ev.evaluate(script.CornacScores(res["model"], data), test, exclude)
    assert r.n_users == res["n_test_users"] > 0
    for m in script.METRICS:
        assert r.means[m] == pytest.approx(res[m], abs=1e-6), m
