"""scripts/compare_recbole.py: mmbench's hyperparameters in RecBole's terms, and models it cannot run yet."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mmbench.config import compose
from tests.helpers import oracle_peer

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_recbole.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_recbole", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cfg(model: str, *more: str):
    return compose(["experiment=topn_ml100k", f"model={model}", "logger=none", *more])


def test_same_settings_are_mmbenchs(script):
    c = cfg("lightgcn")
    same = script.SAME["lightgcn"](c)
    assert same == {
        "train_batch_size": int(c.trainer.batch_size),
        "epochs": int(c.trainer.max_epochs),
        "stopping_step": int(c.callbacks.early_stopping.patience),
        "valid_metric": "NDCG@10",  # conf/trainer monitor ndcg@10
        "learner": "adam",
        "embedding_size": 64,
        "n_layers": 3,
        "reg_weight": 1e-4,
        "require_pow": True,
        "learning_rate": 0.005,
    }
    assert script.SAME["bpr"](cfg("bpr"))["learning_rate"] == 0.001 and "reg_weight" not in script.SAME["bpr"](
        cfg("bpr")
    )
    assert script.SAME["ease"](cfg("ease")) == {"reg_weight": 250.0}
    assert script.SAME["itemknn"](cfg("itemknn")) == {"k": 200, "shrink": 10.0}
    mv = cfg("multivae", "model.encoder_dims=[300,100,50]")
    assert script.SAME["multivae"](mv) == {
        "train_batch_size": int(mv.trainer.batch_size),
        "epochs": int(mv.trainer.max_epochs),
        "stopping_step": int(mv.callbacks.early_stopping.patience),
        "valid_metric": "NDCG@10",
        "learner": "adam",
        "mlp_hidden_size": [300, 100],
        "latent_dimension": 100,  # RecBole splits it into mu and logvar: latent 50 = 100 / 2
        "dropout_prob": 0.5,
        "anneal_cap": 0.2,
        "total_anneal_steps": 200000,
        "learning_rate": 0.001,
    }
    dae = cfg("multdae", "model.reg=0.005")
    assert script.SAME["multdae"](dae) == {
        "train_batch_size": int(dae.trainer.batch_size),
        "epochs": int(dae.trainer.max_epochs),
        "stopping_step": int(dae.callbacks.early_stopping.patience),
        "valid_metric": "NDCG@10",
        "learner": "adam",
        "mlp_hidden_size": [600],
        "latent_dimension": 200,
        "dropout_prob": 0.5,
        "weight_decay": 0.01,  # Adam's L2 gradient wd * W equals that of reg * ||W||^2 for wd = 2 reg
        "learning_rate": 0.001,
    }
    assert set(script.MODELS) == {"bpr", "lightgcn", "ease", "itemknn", "multivae", "multdae"}
    assert all(m in script.PEER_CLASS for m in script.MODELS)


def test_models_it_cannot_run_fail_before_any_work(script, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="unknown 'svd'"):
        script.check_models(["svd"], ["defaults"])
    monkeypatch.setattr(script, "ROOT", tmp_path)  # a checkout without conf/model/multivae.yaml
    with pytest.raises(SystemExit, match="mmbench has no conf/model/multivae.yaml yet"):
        script.check_models(["multivae"], ["defaults"])
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "multivae.yaml").write_text("")
    script.check_models(["multivae"], ["defaults", "mmbench"])
    monkeypatch.setattr(script, "SAME", {k: v for k, v in script.SAME.items() if k != "multivae"})
    script.check_models(["multivae"], ["defaults"])  # RecBole's defaults need no translation
    with pytest.raises(SystemExit, match="no translation of mmbench's hyperparameters to RecBole's yet"):
        script.check_models(["multivae"], ["mmbench"])


def test_main_ranks_the_peers_scores_with_mmbenchs_evaluator(script, tmp_path, monkeypatch, capsys):
    jobs = oracle_peer.compare(script, [], tmp_path, monkeypatch, capsys, "RecBole oracle")
    assert [job["seed"] for job in jobs] == [0, 1]
    assert all(job["config"]["epochs"] == 1 and job["model"] == "BPR" for job in jobs)
