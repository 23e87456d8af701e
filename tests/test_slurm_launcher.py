"""``hydra/launcher=slurm`` on a real one-node SLURM cluster (Debian's ``slurm-wlm`` and ``munge``, started on this
machine by the fixture, ``tests/helpers/services.py``): a 2-job grid is submitted with ``sbatch``, each job one
``mmbench`` run, and SLURM reports both jobs completed on its node."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.services import Slurm, need

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent / "mmbench"
PROGRAMS = ("slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "munged", "mungekey")


@pytest.fixture(scope="module")
def slurm():
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    need(f"no SLURM / munge programs {missing} (Debian: apt-get install slurm-wlm munge)", not missing)
    need("a SLURM node needs root (slurmd starts jobs as their users)", os.geteuid() == 0)
    try:
        pwd.getpwnam("munge")
    except KeyError:
        need("no 'munge' system user to run munged as", False)
    cluster = Slurm().start()
    yield cluster
    cluster.stop()


def test_the_slurm_launcher_runs_a_grid_as_slurm_jobs(slurm, tmp_path):
    # the README's command: CPU jobs ask for no GPU and fit the node
    args = [str(BIN), "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug"]
    args += ["hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
    args += ["dataset=synthetic", "model=pop,random", "eval.progress=false", "logger.log_model=false"]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MMBENCH_WORK_DIR")}
    r = subprocess.run(args, cwd=tmp_path, env=env | slurm.env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("mmbench").experiment_id])
    assert sorted(r.data.tags["model"] for r in runs) == ["pop", "random"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["sweep_id"] for r in runs}) == 1
    folders = [p.name for p in Path(runs[0].data.tags["sweep_id"]).glob(".submitit/*")]
    jobs = sorted(f for f in folders if re.fullmatch(r"\d+_\d+", f))  # submitit submits the grid as one job array
    assert len(jobs) == 2 and len({j.split("_")[0] for j in jobs}) == 1, folders
    for job in jobs:  # SLURM's own record of each array task (kept MinJobAge, 300 s, after it ends)
        assert "JobState=COMPLETED" in job_state(job, env | slurm.env)


def job_state(job: str, env: dict[str, str]) -> str:
    """``scontrol show job``'s record once the job left RUNNING / COMPLETING (submitit returns when the result file is
    written, the job ends a moment later); it names the node."""
    for _ in range(60):
        show = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
        if not re.search(r"JobState=(RUNNING|COMPLETING|PENDING)\b", show):
            break
        time.sleep(0.5)
    assert f"NodeList={socket.gethostname().split('.')[0]}" in show, show
    return show
