"""Servers the service tests start and stop themselves, each on 127.0.0.1 with free ports and a throw-away folder:
PostgreSQL (Debian's ``postgresql``), an MLflow tracking server over it, a one-node SLURM cluster (Debian's
``slurm-wlm`` with ``munge``). A missing program skips its tests with the reason, or fails them when
``MMBENCH_REQUIRE_SERVICES`` is set (CI: ``.ci/run`` installs them).

As root (a fresh container, CI) PostgreSQL runs as the ``postgres`` system user (``initdb`` and ``postgres`` refuse
root) and ``munged`` as ``munge``, through ``runuser``; the SLURM daemons run as root, as on a real node."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest


def need(what: str, ok: bool) -> None:
    """Skip with the reason when a service is missing, fail when ``MMBENCH_REQUIRE_SERVICES`` is set."""
    if ok:
        return
    if os.environ.get("MMBENCH_REQUIRE_SERVICES"):
        pytest.fail(f"{what} and MMBENCH_REQUIRE_SERVICES is set")
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(ready: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen | None, timeout: float) -> None:
    """Poll ``ready`` every 0.3 s; fail with the end of ``log`` when the server exits or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while not ready():
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            pytest.fail(f"{what} did not start:\n{text}")
        time.sleep(0.3)


def as_user(user: str, cmd: list[str]) -> list[str]:
    """``cmd`` run as the system ``user`` when we are root (a daemon that refuses root), else as ourselves."""
    return ["runuser", "-u", user, "--", *cmd] if os.geteuid() == 0 else cmd


def own(path: Path, user: str, mode: int = 0o700) -> Path:
    """``path`` owned by ``user`` when we are root (the folder a daemon running as that user writes)."""
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    path.chmod(mode)
    return path


def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server (``/usr/lib/postgresql/<version>/bin``), else ``initdb`` on PATH."""
    found = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if (Path(d) / "postgres").is_file()]
    if found:
        return max(found, key=lambda d: int(d.parent.name.split(".")[0]))
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class Postgres:
    """A PostgreSQL server on 127.0.0.1: ``initdb`` into a fresh folder, ``postgres`` on a free port, password-free
    (``trust``) connections as the ``postgres`` role; :meth:`stop` shuts it down and deletes the folder."""

    def __init__(self, bindir: Path) -> None:
        self.bin, self.port = bindir, free_port()
        self.root = own(Path(tempfile.mkdtemp(prefix="mmbench-pg-")), "postgres")
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Postgres:
        init = [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        r = subprocess.run(as_user("postgres", [*init, "-E", "UTF8", "--no-locale"]), capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"initdb failed: {r.stderr[-3000:]}")
        server = [str(self.bin / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port)]
        server += ["-k", str(self.root), "-c", "fsync=off", "-c", "max_connections=200"]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(as_user("postgres", server), stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._ready, "PostgreSQL", self.log, self.proc, 60)
        return self

    def _ready(self) -> bool:
        cmd = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def database(self, name: str) -> str:
        """A new empty database; its SQLAlchemy URL (the one Optuna and MLflow take)."""
        cmd = [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name]
        subprocess.run(cmd, check=True, capture_output=True)
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None:
            subprocess.run(as_user("postgres", [str(self.bin / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast"]))
            self.proc.wait(60)
        shutil.rmtree(self.root, ignore_errors=True)


class MLflowServer:
    """``mlflow server`` on 127.0.0.1 over a backend store URI, artifacts proxied by the server into a local folder
    (clients on other machines upload through it); :meth:`stop` terminates it."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.port, self.folder, self.log = free_port(), folder, folder / "mlflow-server.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = ["mlflow", "server", "--backend-store-uri", backend]
        self.command += ["--artifacts-destination", str(folder / "mlartifacts")]
        self.command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.proc: subprocess.Popen | None = None

    def start(self) -> MLflowServer:
        with open(self.log, "w") as log:
            cmd = [sys.executable, "-m", *self.command]
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        wait_for(self._ready, "mlflow server", self.log, self.proc, 240)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


SLURM_CONF = """ClusterName=mmbench
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Slurm:
    """A one-node SLURM cluster on this machine: ``munged`` with its own key and socket, ``slurmctld`` and ``slurmd``
    with a generated ``slurm.conf`` (no cgroups: ``proctrack/linuxproc``, ``task/none``; no accounting, so ``sacct``
    answers nothing and submitit waits on its result files). Clients find it through ``SLURM_CONF`` (:attr:`env`).
    Needs root: ``slurmd`` starts jobs as their users."""

    def __init__(self) -> None:
        self.root = own(Path(tempfile.mkdtemp(prefix="mmbench-slurm-")), "root", 0o755)  # munged must reach its folder
        self.munge = self.root / "munge"
        self.munge.mkdir()
        own(self.munge, "munge", 0o755)  # munged wants its socket's folder readable by all, writable only by itself
        self.procs: list[subprocess.Popen] = []
        self.conf = self.root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self) -> Slurm:
        m = self.munge
        key = subprocess.run(as_user("munge", ["mungekey", "-c", "-k", str(m / "munge.key")]), capture_output=True)
        if key.returncode:
            pytest.fail(f"mungekey failed: {key.stderr.decode()[-2000:]}")
        munged = ["munged", "-F", f"--socket={m}/munge.socket", f"--key-file={m}/munge.key"]
        munged += [f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"]
        self._spawn(as_user("munge", munged), m / "munged.out")
        wait_for(lambda: (m / "munge.socket").exists(), "munged", m / "munged.log", self.procs[-1], 30)
        for d in ("state", "spool"):
            (self.root / d).mkdir()
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(
            SLURM_CONF.format(
                host=host, ctld_port=free_port(), d_port=free_port(), munge=m, root=self.root, cpus=os.cpu_count()
            )
        )
        self._spawn(["slurmctld", "-D", "-f", str(self.conf)], self.root / "slurmctld.out")
        self._spawn(["slurmd", "-D", "-f", str(self.conf)], self.root / "slurmd.out")
        wait_for(self._idle, "SLURM (slurmctld + slurmd)", self.root / "slurmctld.log", None, 60)
        return self

    def _spawn(self, cmd: list[str], out: Path) -> None:
        with open(out, "w") as f:
            self.procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT))

    def _idle(self) -> bool:
        """The node is up and free (``sinfo`` says idle)."""
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env={**os.environ, **self.env}, capture_output=True, text=True)
        return r.returncode == 0 and r.stdout.strip() == "idle"

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)
