"""Every conf/encoder option composes under ``encoders.<modality>``, validates and instantiates."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR, ConfigError, validate
from mmbench.encoders import Encoder


@pytest.mark.parametrize("option", sorted(f.stem for f in (CONF_DIR / "encoder").glob("*.yaml")))
def test_encoder_option_composes(option, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    extra = []
    if option == "precomputed":
        np.save(tmp_path / "f.npy", np.zeros((2, 3), np.float32))
        extra = [f"encoders.x.path={tmp_path / 'f.npy'}"]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"+encoder@encoders.x={option}", *extra])
    validate(cfg)
    assert isinstance(instantiate(cfg.encoders.x), Encoder)


def test_encoder_typo_fails_before_work():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+encoder@encoders.image=timm", "+encoders.image.pretraind=true"])
    with pytest.raises(ConfigError, match="encoders.image: unknown key"):
        validate(cfg)


def test_user_encoders_compose_and_a_typo_fails_before_work():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+encoder@user_encoders.demographics=demographics"])
        typo = compose(
            "config",
            overrides=[
                "+encoder@user_encoders.demographics=demographics",
                "+user_encoders.demographics.numerics=[age]",
            ],
        )
    validate(cfg)
    assert isinstance(instantiate(cfg.user_encoders.demographics), Encoder)
    with pytest.raises(ConfigError, match=r"user_encoders.demographics: unknown key\(s\) \['numerics'\].*'numeric'"):
        validate(typo)
