"""Running ``mmbench`` as a user does: a subprocess with the default stores."""

from __future__ import annotations

import os
import subprocess


def run_cli(args, cwd, data_dir, check=True):
    env = {**os.environ, "MMBENCH_DATA_DIR": str(data_dir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MMBENCH_WORK_DIR", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=600)
