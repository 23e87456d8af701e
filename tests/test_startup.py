"""Start-up cost: ``mmbench --help``, Hydra's plugin scan and a run that trains nothing neural import none of the
heavy libraries (Lightning and through it torchmetrics ~5 s; timm, sentence-transformers; MLflow and Optuna where
the run does not log to MLflow or search). Checked on ``sys.modules`` of a fresh interpreter, not on a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEURAL = ("pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "timm", "sentence_transformers")
TRACKING = ("mlflow", "optuna")


def loaded_after(code: str, tmp_path: Path) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a fresh interpreter (from ``tmp_path``)."""
    listing = "print('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\nimport json, sys\n{listing}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMBENCH_WORK_DIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES=")][-1]
    return set(json.loads(line.removeprefix("MODULES=")))


def test_cli_and_sweeper_plugin_import_nothing_heavy(tmp_path):
    loaded = loaded_after(
        "import mmbench.cli, mmbench.search\nimport hydra_plugins.mmbench_optuna_sweeper.mmbench_optuna_sweeper",
        tmp_path,
    )
    assert "hydra" in loaded and "mmbench" in loaded  # the probe did import them
    assert not loaded & set(NEURAL + TRACKING), sorted(loaded & set(NEURAL + TRACKING))


@pytest.mark.slow
def test_help_scans_the_plugins_without_heavy_imports(tmp_path):
    loaded = loaded_after(
        "import sys\nsys.argv = ['mmbench', '--help']\nfrom mmbench.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "from hydra.core.plugins import Plugins\nfrom hydra.plugins.sweeper import Sweeper\n"
        "assert any(p.__name__ == 'MmbenchOptunaSweeper' for p in Plugins.instance().discover(Sweeper))",
        tmp_path,
    )
    assert "hydra_plugins" in loaded
    assert not loaded & set(NEURAL + TRACKING), sorted(loaded & set(NEURAL + TRACKING))


@pytest.mark.slow
def test_a_classic_untracked_run_imports_no_lightning_mlflow_or_optuna(tmp_path):
    loaded = loaded_after(
        "import sys\nsys.argv = ['mmbench', 'experiment=quick', 'model=pop', 'logger=none']\n"
        "from mmbench.cli import main\nmain()\nimport mmbench.pipeline",
        tmp_path,
    )
    assert {"torch", "mmbench"} <= loaded
    assert not loaded & set(NEURAL + TRACKING), sorted(loaded & set(NEURAL + TRACKING))


@pytest.mark.slow
def test_a_neural_run_still_validates_its_callbacks(tmp_path):
    """The ``callbacks`` node is skipped only for models that are not neural: a typo there still fails a BPR run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MMBENCH_WORK_DIR": str(tmp_path)}
    args = ["experiment=quick", "logger=none", "+callbacks.early_stopping.patiencee=3"]
    bad = subprocess.run(
        [sys.executable, "-m", "mmbench", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and "patiencee" in bad.stderr


def test_a_rating_grid_with_its_table_callback_imports_no_scipy_stats(tmp_path):
    """experiment=surprise_ml100k's table callback and its jobs' modules leave scipy.stats (~1 s) unimported: only a
    table with a significance test needs it."""
    probe = (
        "import sys\nimport mmbench.reproduce, mmbench.pipeline, mmbench.tracking.mlflow_tracker\n"
        "import mmbench.models.rating.knn, mmbench.models.rating.svd, mmbench.models.rating.nmf\n"
        "print('STATS=' + str('scipy.stats' in sys.modules))\n"
        "from mmbench.reporting.statistics import paired_test\n"
        "print('P=' + str(round(paired_test([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 2.0, 5.0], 'ttest'), 6)))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STATS=False" in out.stdout
    assert "P=0.604181" in out.stdout  # the lazy import still tests: d = a - b, t = mean / (sd / 2) = -0.577, 3 df
