"""scripts/tune_mm.py: by default the same studies and commands as the shell script that made results/mm_ml100k/tuned/;
other experiments and budgets change only those two settings."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tune_mm.py"
_spec = importlib.util.spec_from_file_location("tune_mm", SCRIPT)
tune = importlib.util.module_from_spec(_spec)
sys.modules["tune_mm"] = tune
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
        assert tune.command(name) == shlex.split(line)
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
        cfg = compose("config", overrides=tune.command(name)[1:], return_hydra_config=True)
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


def test_another_experiment_and_budget_change_only_those_settings(tmp_path, monkeypatch, capsys):
    cmd = tune.command("vbpr", "mm_ml1m", 7)
    default = tune.command("vbpr")
    changed = [(a, b) for a, b in zip(default, cmd, strict=True) if a != b]
    assert changed == [
        ("experiment=mm_ml100k", "experiment=mm_ml1m"),
        ("hydra.sweeper.n_trials=12", "hydra.sweeper.n_trials=7"),
    ]
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=cmd[1:], return_hydra_config=True)
    validate(cfg)
    assert cfg.hydra.sweeper.n_trials == 7 and cfg.dataset._target_ == "mmbench.data.ml1m_mm.MovieLens1MMM"
    assert cfg.experiment_name == "mm_ml1m_lite0"
    assert tune.main(["--print", "--experiment", "mm_ml1m", "--trials", "7", "vbpr"]) == 0
    assert shlex.split(capsys.readouterr().out.strip()) == cmd
    for bad in (["--trials", "0"], ["--experiment", "ml1m"]):
        with pytest.raises(SystemExit):
            tune.main(["--print", *bad])


def test_a_longer_training_budget_adds_only_its_overrides(tmp_path, monkeypatch, capsys):
    cmd = tune.command("vbpr", max_epochs=1000, patience=20, prune_after=50)
    assert cmd[: len(tune.command("vbpr"))] == tune.command("vbpr")
    assert cmd[len(tune.command("vbpr")) :] == [
        "trainer.max_epochs=1000",
        "callbacks.early_stopping.patience=20",
        "hydra.sweeper.pruner.n_warmup_steps=50",
    ]
    assert tune.command("none", patience=5)[-1] == "callbacks.early_stopping.patience=5"
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=cmd[1:], return_hydra_config=True)
    validate(cfg)
    assert cfg.trainer.max_epochs == 1000 and cfg.callbacks.early_stopping.patience == 20
    assert cfg.hydra.sweeper.pruner.n_warmup_steps == 50 and cfg.hydra.sweeper.pruner.n_startup_trials == 3
    argv = ["--print", "--max-epochs", "1000", "--patience", "20", "--prune-after", "50", "vbpr"]
    assert tune.main(argv) == 0
    assert shlex.split(capsys.readouterr().out.strip()) == cmd
    for flag, bad in (("--max-epochs", "0"), ("--patience", "0"), ("--prune-after", "-1")):
        with pytest.raises(SystemExit):
            tune.main(["--print", flag, bad, "vbpr"])
        assert f"{flag} {bad}: need at least" in capsys.readouterr().err
