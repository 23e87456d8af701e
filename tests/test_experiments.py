"""The topn_ml100k experiment: a multirun of existing model options x 3 seeds with the table callback."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from mmbench.config import CONF_DIR


def test_topn_ml100k_sweeps_every_listed_model_over_three_seeds():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=topn_ml100k"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    models = params.model.split(",")
    assert models == ["pop", "itemknn", "userknn", "ease", "wmf", "bpr", "lightgcn"]
    assert all((CONF_DIR / "model" / f"{m}.yaml").is_file() for m in models)
    assert params.seed == "0,1,2"
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert (cfg.split.val_ratio, cfg.split.test_ratio, cfg.split.seed) == (0.1, 0.1, 0)
    assert cfg.eval.positive_threshold is None  # all ratings are positives
    table = cfg.hydra.callbacks.table
    assert get_class(table._target_).__name__ == "TableCallback"
    assert {"test/recall@10", "test/ndcg@20", "test/hit@10", "time/fit_s"} <= set(table.metrics)


def test_costs_ml100k_shares_the_topn_split_and_tabulates_the_compute_columns():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=costs_ml100k"], return_hydra_config=True)
        topn = compose("config", overrides=["experiment=topn_ml100k"], return_hydra_config=True)
    models = cfg.hydra.sweeper.params.model.split(",")
    assert {"bpr", "multivae", "multdae", "neumf", "ease"} <= set(models)
    assert all((CONF_DIR / "model" / f"{m}.yaml").is_file() for m in models)
    assert cfg.split == topn.split and cfg.dataset == topn.dataset  # the same split fingerprint
    assert cfg.costs.flops and cfg.costs.energy
    assert list(cfg.hydra.callbacks.table.costs) == ["compute", "seeds"]
