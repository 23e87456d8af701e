"""scripts/topn_amazon_baby.py: every study composes as a validation-only search of its model on the LATTICE split."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from mmbench.config import CONF_DIR, validate

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "topn_amazon_baby.py"
_spec = importlib.util.spec_from_file_location("topn_amazon_baby", SCRIPT)
baby = importlib.util.module_from_spec(_spec)
sys.modules["topn_amazon_baby"] = baby
_spec.loader.exec_module(baby)


@pytest.mark.parametrize("name", list(baby.STUDIES))
def test_every_study_composes_on_the_lattice_split(name, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    cmd = baby.command(name)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=cmd[1:], return_hydra_config=True)
    validate(cfg)
    assert cfg.model._target_.lower().endswith(f".{name}.{name}")
    assert cfg.dataset.name == "amazon_baby" and cfg.split._target_.endswith("PublishedSplit")
    assert cfg.trainer.monitor == "recall@20" and list(cfg.eval.ks) == [10, 20]
    if name == "pop":
        assert "hparams_search" not in " ".join(cmd)
        return
    sweeper = cfg.hydra.sweeper
    assert sweeper.n_trials == baby.STUDIES[name][1] and len(sweeper.enqueue_trials) == 1
    # trial 0 is the model's own conf/model defaults
    for key, value in sweeper.enqueue_trials[0].items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_print_and_table_commands(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MMBENCH_WORK_DIR", str(tmp_path))
    assert baby.main(["--print", "pop", "--table"]) == 0
    lines = [shlex.split(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == ["mmbench", "experiment=topn_amazon_baby", "model=pop"]
    table = lines[1]
    assert table[:2] == ["mmbench-table", "amazon_baby"] and f"sqlite:///{tmp_path}/mlflow.db" in table
    assert "metrics.`test/recall_at_20` >= 0" in table
    with pytest.raises(SystemExit):
        baby.main(["--print", "nope"])
    assert "unknown study nope" in capsys.readouterr().err
