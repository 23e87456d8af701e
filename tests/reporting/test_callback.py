"""TableCallback: at the end of a multirun, the table of that sweep's runs only."""

from __future__ import annotations

import pandas as pd
from omegaconf import OmegaConf

from mmbench.reporting.aggregation import Contribution
from mmbench.reporting.callback import TableCallback
from tests.helpers.mlflow_runs import log_mlflow_run


def test_tabulates_the_runs_of_its_sweep(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = tmp_path / "multirun" / "s1"
    fp = {"split_fingerprint": "f" * 64}
    pu = pd.DataFrame({"user": ["1", "2", "3"], "ndcg@10": [0.1, 0.2, 0.3]})
    mine = [
        log_mlflow_run(uri, "e", {"model": m, "sweep_id": str(sweep), **fp}, {"test/ndcg@10": v}, i, pu)
        for i, (m, v) in enumerate([("pop", 0.2), ("bpr", 0.3)], start=1)
    ]
    log_mlflow_run(uri, "e", {"model": "old", "sweep_id": str(tmp_path / "other"), **fp}, {"test/ndcg@10": 0.9}, 9)
    config = OmegaConf.create(
        {
            "hydra": {"sweep": {"dir": str(sweep)}, "overrides": {"task": ["model=pop,bpr"]}},
            "logger": {"tracking_uri": uri},
            "experiment_name": "e",
            "paths": {"work_dir": str(tmp_path)},
        }
    )
    spec = OmegaConf.create(
        {"metric": "test/ndcg@10", "rows": "fusion", "columns": "modalities", "column_values": ["text"]}
    )
    parsed = TableCallback("t", contribution=spec).options["contribution"]
    assert parsed == Contribution("test/ndcg@10", "fusion", "modalities", ("text",))  # a config mapping, parsed
    cb = TableCallback("t", metrics=["test/ndcg@10"], plots=False)
    cb.on_multirun_end(config)
    out = tmp_path / "results" / "t"
    assert pd.read_csv(out / "runs.tsv", sep="\t")["run_id"].tolist() == mine  # not the other sweep's run
    assert "mmbench -m model=pop,bpr" in (out / "README.md").read_text()


def test_a_sweep_without_mlflow_runs_says_so_instead_of_failing(tmp_path, capsys):
    config = OmegaConf.create(
        {
            "hydra": {"sweep": {"dir": str(tmp_path)}, "overrides": {"task": []}},
            "logger": {"_target_": "mmbench.tracking.NullTracker"},  # logger=none: no tracking_uri
            "experiment_name": "e",
            "paths": {"work_dir": str(tmp_path)},
        }
    )
    TableCallback("t", plots=False).on_multirun_end(config)
    assert "no table: mmbench.tracking.NullTracker records no MLflow runs" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_the_tables_code_is_imported_at_the_sweeps_end_and_a_bad_contribution_fails_at_once():
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys\nfrom mmbench.reporting.callback import TableCallback\nTableCallback('t')\n"
        "print('AGGREGATION=' + str('mmbench.reporting.aggregation' in sys.modules))\n"
        "try:\n    TableCallback('t', contribution={'metric': 'm', 'rows': 'r', 'colums': 'c'})\n"
        "except TypeError as e:\n    print('REFUSED=' + str(e))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "AGGREGATION=False" in out.stdout  # pandas / scipy.stats wait for on_multirun_end
    assert "REFUSED=" in out.stdout and "colums" in out.stdout
