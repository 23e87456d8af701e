"""The reporting tests' MLflow store: two protocols on their own splits, rows by model / fusion / modalities,
seeds, a re-run; per-user files with the evaluator's ``sparse`` column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmbench.reporting.aggregation import Contribution
from tests.helpers.mlflow_runs import log_mlflow_run

# A real MLflow store: two protocols on their own splits, rows by model / fusion / modalities, seeds, a re-run.
USERS7 = [str(u) for u in range(1, 8)]
TRAIN = [(1, 10, 4), (2, 11, 2), (3, 10, 5), (3, 12, 3), (4, 11, 4), (4, 12, 1), (4, 13, 3)]
TRAIN += [(5, 10, 3), (5, 13, 5), (5, 14, 2), (6, 11, 1), (6, 12, 2), (6, 14, 4)]
VAL = [(3, 14, 4)]
TEST_WARM = [(1, 11, 3), (2, 12, 5), (3, 13, 2), (4, 10, 4), (5, 99, 1), (6, 13, 3), (7, 10, 5)]
TEST_COLD = [(1, 15, 4), (2, 15, 2)]
# training events: users 1, 2: 1; 3: 2; 4, 5, 6: 3; 7: 0. The 0.25 quantile of (0, 1, 1, 2, 3, 3, 3) is 1: the
# evaluator flags users 1, 2, 7 sparse (the per-user files' ``sparse`` column; tables read it, never recompute it)
SPARSE = {"warm": ["1", "2", "7"], "cold": ["1", "2"]}
BASE = "fusion_rec / - / none"
# (protocol, model, fusion, modalities, seed, extra metrics)
RUNS = [
    ("warm", "pop", "-", "none", "0", {}),  # an earlier run of pop, seed 0: replaced by the re-run below
    ("warm", "fusion_rec", "-", "none", "0", {"model/n_params": 100.0}),
    ("warm", "fusion_rec", "-", "none", "1", {"model/n_params": 100.0}),
    ("warm", "fusion_rec", "early", "text", "0", {"model/n_params": 150.0}),
    ("warm", "fusion_rec", "early", "text", "1", {"model/n_params": 150.0}),
    ("warm", "fusion_rec", "early", "text+image", "0", {}),
    (
        "warm",
        "fusion_rec",
        "attention",
        "text+image",
        "0",
        dict(zip(["fusion/attention_id", "fusion/attention_text", "fusion/attention_image"], [0.6, 0.3, 0.1])),
    ),
    ("warm", "fusion_rec", "late", "image", "0", {"fusion/weight_id": 0.7, "fusion/weight_image": 0.3}),
    ("warm", "seed_cnn_lstm", "concat", "text+image", "0", {"test/rmse": 1.05}),
    ("warm", "pop", "-", "none", "0", {}),
    ("cold", "fusion_rec", "-", "none", "0", {}),
    ("cold", "fusion_rec", "early", "text", "0", {}),
]


def write_split(folder, test_rows):
    folder.mkdir(parents=True)
    for part, rows in (("train", TRAIN), ("val", VAL), ("test", test_rows)):
        pd.DataFrame(rows, columns=["user", "item", "rating"]).assign(timestamp=0).to_csv(
            folder / f"{part}.tsv", sep="\t", index=False
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The store's URI and, per run, (protocol, row, seed, run id, per-user frame, logged metrics)."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp}/mlflow.db"
    write_split(tmp / "warm", TEST_WARM)
    write_split(tmp / "cold", TEST_COLD)
    rng = np.random.default_rng(0)
    logged = []
    for i, (protocol, model, fusion, mods, seed, extra) in enumerate(RUNS):
        users = USERS7 if protocol == "warm" else ["1", "2"]
        # per-user values: a user level, a row effect (clear differences, small p-values) and noise
        effect = 0.05 * list(dict.fromkeys(r[1:4] for r in RUNS)).index((model, fusion, mods))
        level = np.linspace(0.1, 0.4, len(users))
        pu = pd.DataFrame(
            {
                "user": users,
                "recall@20": level + effect + rng.normal(0, 0.02, len(users)),
                "ndcg@20": level[::-1] + effect + rng.normal(0, 0.02, len(users)),
                "sparse": [int(u in SPARSE[protocol]) for u in users],
            }
        )
        sparse = pu[pu.user.isin(SPARSE[protocol])]
        metrics = {
            "test/recall@20": pu["recall@20"].mean(),
            "test/ndcg@20": pu["ndcg@20"].mean(),
            "test/sparse/ndcg@20": sparse["ndcg@20"].mean(),
            "time/fit_s": 10.0 * (i + 1),
            "time/eval_test_s": 0.5,
            **extra,
        }
        tags = {"protocol": protocol, "model": model, "fusion": fusion, "modalities": mods, "seed": seed}
        tags |= {"split_fingerprint": protocol[0] * 64, "split_dir": str(tmp / protocol), "git_commit": "a" * 40}
        params = {"eval.sparse_quantile": "0.25"}
        rid = log_mlflow_run(uri, "mm", tags, metrics, 1_000 + i, pu, params)
        logged.append((protocol, f"{model} / {fusion} / {mods}", seed, rid, pu, metrics))
    return uri, logged


OPTIONS = dict(
    rows=["model", "fusion", "modalities"],
    metrics=["test/recall@20", "test/ndcg@20", "test/sparse/ndcg@20", "test/rmse"],
    baseline=BASE,
    test="ttest",
    costs=["time/fit_s", "model/n_params", "seeds"],
    contribution=Contribution("test/ndcg@20", "fusion", "modalities", ("text", "image", "text+image")),
    means=["fusion/attention_", "fusion/weight_"],
    rating_ref=True,
)
