"""Every option of every config group composes, validates and instantiates; typos fail before work."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mmbench.config import CONF_DIR, ConfigError, compose, validate

GROUPS = ["dataset", "preprocess", "split", "model", "trainer", "eval", "logger", "experiment", "hparams_search"]
# options whose required paths (???) a user gives on the command line
REQUIRED = {
    ("split", "predefined"): ["split.train=tr.tsv", "split.test=te.tsv"],
    ("split", "predefined_column"): ["split.path=d.inter"],
    ("dataset", "movielens"): ["dataset.path=/data/ml-25m"],
    ("dataset", "interactions"): ["dataset.path=events.csv"],
    ("dataset", "lattice"): ["dataset.path=folder"],
    ("dataset", "mmrec"): ["dataset.path=folder"],
    ("dataset", "amazon"): ["dataset.reviews=Baby_5.json.gz"],
    ("dataset", "yelp"): ["dataset.path=folder"],
}


def options():
    for group in GROUPS:
        for f in sorted((CONF_DIR / group).glob("*.yaml")):
            yield group, f.stem


def compose_cfg(overrides):
    return compose(overrides)


@pytest.mark.parametrize("group, option", list(options()))
def test_every_option_composes_validates_and_instantiates(group, option, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    cfg = compose_cfg([f"{group}={option}", *REQUIRED.get((group, option), [])])
    validate(cfg)
    OmegaConf.resolve(cfg)
    for g in GROUPS[:-2]:
        obj = instantiate(cfg[g])
        assert obj is not None
        assert type(obj).__name__.lower() == str(cfg[g]._target_).rsplit(".", 1)[-1].lower()


def test_default_run_is_ml100k_random_split_itemknn():
    cfg = compose_cfg([])
    assert cfg.dataset._target_.endswith("MovieLens100K")
    assert (cfg.split.val_ratio, cfg.split.test_ratio) == (0.1, 0.1)
    assert cfg.model._target_.endswith("ItemKNN")
    assert cfg.trainer.precision == "32-true"


def test_misspelt_option_lists_the_choices():
    with pytest.raises(ConfigCompositionException) as e:
        compose_cfg(["model=bprr"])
    assert "bpr" in str(e.value) and "itemknn" in str(e.value)


def test_unknown_key_fails_before_work():
    with pytest.raises(ConfigCompositionException, match="kk"):
        compose_cfg(["model.kk=3"])
    cfg = compose_cfg(["+model.kk=3"])
    with pytest.raises(ConfigError, match=r"model: unknown key\(s\) \['kk'\].*valid keys: \['k', 'shrink'"):
        validate(cfg)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.k=abc", r"model.k='abc': expected <class 'int'>"),
        ("trainer.max_epochs=1.5", "trainer.max_epochs=1.5"),
        ("eval.ks=10", "eval.ks=10"),
        ("dataset._target_=mmbench.data.nope.Nope", "cannot import"),
    ],
)
def test_wrong_types_and_targets_fail(override, message):
    cfg = compose_cfg(["model=itemknn", override])
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_missing_required_value_is_reported():
    cfg = compose_cfg(["split=predefined"])
    with pytest.raises(Exception, match="train"):
        validate(cfg)
