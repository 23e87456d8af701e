"""Every conf/fusion option composes into fusion_rec (``fusion@model.fusion=<option>``) and instantiates."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mmbench.config import CONF_DIR, validate
from mmbench.fusion import Fusion


@pytest.mark.parametrize("option", sorted(f.stem for f in (CONF_DIR / "fusion").glob("*.yaml")))
def test_fusion_option_composes(option, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["model=fusion_rec", f"fusion@model.fusion={option}"])
    validate(cfg)
    model = instantiate(cfg.model)
    assert isinstance(model.fusion, Fusion)
    assert type(model.fusion).__name__.lower() == f"{option}fusion"
