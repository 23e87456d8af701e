"""scripts/peers/setup.sh stops clearly, before building any environment, when it cannot get MMRec's source."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "peers" / "setup.sh"


def setup(*args: str, url: str = "http://127.0.0.1:9/MMRec.git") -> subprocess.CompletedProcess:
    env = os.environ | {"MMREC_URL": url, "MMREC_CLONE_TIMEOUT": "20"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60)


def test_offline_clone_fails_clearly_before_any_environment(tmp_path):
    r = setup("--dir", str(tmp_path / "peers"))
    assert r.returncode != 0
    assert "could not clone MMRec from http://127.0.0.1:9/MMRec.git (no network to GitHub?)" in r.stderr
    assert "--mmrec-git-dir" in r.stderr
    assert sorted(p.name for p in (tmp_path / "peers").iterdir()) == []  # no venv, no partial source


def test_a_local_source_that_is_not_mmrec_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    r = setup("--dir", str(tmp_path / "peers"), "--mmrec-git-dir", str(tmp_path / "empty"))
    assert r.returncode != 0
    assert f"--mmrec-git-dir {tmp_path / 'empty'} is not a git directory holding MMRec commit" in r.stderr
    assert not (tmp_path / "peers" / "venv").exists()


def test_the_peers_never_go_inside_the_repository():
    inside = SCRIPT.parents[2] / "peers-inside"
    r = setup("--dir", str(inside))
    assert r.returncode != 0 and "is inside the repository" in r.stderr
    assert not inside.exists()
