"""scripts/tune_mm_ml100k.py: the same studies and commands as the shell script that made results/mm_ml100k/tuned/."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tune_mm_ml100k.py"
_spec = importlib.util.spec_from_file_location("tune_mm_ml100k", SCRIPT)
tune = importlib.util.module_from_spec(_spec)
sys.modules["tune_mm_ml100k"] = tune
_spec.loader.exec_module(tune)

# What scripts/tune_mm_ml100k.sh (commit 57bc93e) ran, expanded by hand from its bash arrays
_COMMON = "mmbench experiment=mm_ml100k hydra.sweeper.n_trials=12 trainer.enable_progress_bar=false +tags.protocol=warm"
_FR = (
    "hparams_search=fusion_rec_optuna +tags.model=fusion_rec "
    '"hydra.sweeper.enqueue_trials=[{model.embedding_dim:64,model.reg:1e-05,model.optimizer.lr:0.005}]"'
)
_MM = '"model.modalities=[text,image]" "+tags.modalities=\'text+image\'"'
SHELL = {
    "none": f'{_COMMON} {_FR} "model.modalities=[]" "+tags.fusion=\'-\'" +tags.modalities=none '
    "hydra.sweeper.study_name=fusion_rec-none",
    "graph": f'{_COMMON} {_FR} "fusion@model.fusion=graph" {_MM} "+tags.fusion=graph" '
    '"hydra.sweeper.study_name=fusion_rec-graph"',
    "freedom": f"{_COMMON} hparams_search=freedom_optuna +tags.model=freedom \"+tags.fusion='-'\" {_MM} "
    '"hydra.sweeper.enqueue_trials=[{model.k:10,model.dropout:0.8,model.reg_weight:1e-04,model.optimizer.lr:0.001}]" '
    "hydra.sweeper.study_name=freedom",
}


def test_commands_are_the_shell_scripts(capsys):
    assert list(tune.STUDIES) == ["none", "late", "graph", "attention", "vbpr", "freedom", "freedom_none"]
    for name, line in SHELL.items():
        assert ["mmbench", *tune.STUDIES[name]] == shlex.split(line)
    assert tune.main(["--print", "none", "graph"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [shlex.split(p) for p in printed] == [shlex.split(SHELL["none"]), shlex.split(SHELL["graph"])]
    with pytest.raises(SystemExit):
        tune.main(["--print", "nope"])
    assert "unknown study nope" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(tune.STUDIES))
def test_every_study_composes_as_a_12_trial_search(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(tune.STUDIES[name]), return_hydra_config=True)
    validate(cfg)
    assert cfg.hydra.sweeper.n_trials == 12 and len(cfg.hydra.sweeper.enqueue_trials) == 1
    own = {"vbpr": "vbpr", "freedom": "freedom", "freedom_none": "freedom-none"}
    assert cfg.hydra.sweeper.study_name == own.get(name, f"fusion_rec-{name}")
    model = name.removesuffix("_none") if name in own else "fusion_rec"
    assert (
        cfg.tags.protocol == "warm"
        and cfg.tags.model == model
        and cfg.model._target_.lower().endswith(model.replace("_", ""))
    )
    assert cfg.tags.modalities == ("none" if name.endswith("none") else "text+image")
    assert (len(cfg.model.modalities) == 0) == name.endswith("none")
    assert cfg.tags.fusion == (name if name in ("late", "graph", "attention") else "-")
