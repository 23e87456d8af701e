"""Multi-device (DDP) training: how many processes a trainer config asks for, and the process group mmbench starts.

``mmbench ... trainer.devices=N trainer.strategy=ddp`` runs the pipeline in N processes: the one started by the
user is rank 0; :class:`RankGroup` starts ranks 1..N-1 as ``command`` (the pipeline's rank entry, which rebuilds the
run from the saved config up to training), waits until each is ready to train, and sets the variables Lightning
reads (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``, ``NODE_RANK``, ``LOCAL_RANK``), so that Lightning joins the
processes into one group instead of re-running the command line (which, in a Hydra multirun or under pytest, would
start the whole sweep or test session again).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import torch

log = logging.getLogger(__name__)

RANK_VAR = "MMBENCH_DDP_RANK"  # set in every process of a group mmbench started (0 in the first one)
DIR_VAR = "MMBENCH_DDP_DIR"  # the group's folder: the files given to RankGroup, ready marks
# Lightning's multiprocessing strategies train in processes that get a pickled copy of the module and train only;
# mmbench's processes each rebuild the run from its config (the pipeline's rank entry) instead.
_REFUSED = ("ddp_spawn", "ddp_fork", "ddp_notebook", "spawn", "fork", "notebook", "dp")
_SUPPORTED = ("auto", "ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false")


def processes(devices: int | str | Sequence[int], accelerator: str, strategy: str) -> int:
    """The number of training processes ``trainer.devices`` asks for on ``accelerator`` (one per device), after
    checking ``strategy`` can run them; a clear ``ValueError`` names the value otherwise."""
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        n = len(devices)
    elif devices in ("auto", -1):
        n = torch.cuda.device_count() if accelerator in ("gpu", "cuda") else 1
    elif isinstance(devices, int) and devices >= 1:
        n = devices
    else:
        raise ValueError(f"trainer.devices={devices!r}: give a number of devices (>= 1), a list of device ids or auto")
    if accelerator in ("gpu", "cuda") and n > 1 and n > torch.cuda.device_count():  # one GPU: Lightning's own error
        raise ValueError(f"trainer.devices={devices!r} asks for {n} GPUs; this machine has {torch.cuda.device_count()}")
    name = strategy if isinstance(strategy, str) else type(strategy).__name__
    if n > 1 and name in _REFUSED:
        raise ValueError(
            f"trainer.strategy={name!r} is not supported: its processes receive a pickled copy of the model and "
            "train only, so the early-stopping state, best checkpoint and epoch count stay in them; use "
            "trainer.strategy=ddp (mmbench starts one process per device, each rebuilding the run from its config)"
        )
    if n > 1 and name not in _SUPPORTED:
        raise ValueError(f"trainer.strategy={name!r} with {n} devices: use one of {list(_SUPPORTED)}")
    return n


def launched_rank() -> int | None:
    """This process's rank in a group :class:`RankGroup` started (0 in the starting process while it trains);
    None outside one."""
    rank = os.environ.get(RANK_VAR)
    return None if rank is None else int(rank)


def group_file(name: str) -> Path:
    """A file given to the :class:`RankGroup` this process belongs to."""
    return Path(os.environ[DIR_VAR]) / name


def mark_ready() -> None:
    """Tell rank 0 that this process is about to join the process group (it waits for every rank before it joins)."""
    (Path(os.environ[DIR_VAR]) / f"ready.{launched_rank()}").touch()


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every tensor of ``module.state_dict()`` (names, dtypes, shapes, bytes): equal on every rank when
    they hold the same weights."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu()
        parts = [t.coalesce().indices(), t.coalesce().values()] if t.is_sparse else [t]
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        for p in parts:
            h.update(p.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RankGroup:
    """Within ``with RankGroup(n, command, files):`` this process is rank 0 of ``n`` DDP processes on this machine.

    Entering writes ``files`` (name -> text) into a fresh folder, starts ranks 1..n-1 as ``command`` (cwd and
    environment inherited, plus ``env`` and the rank variables) and waits until each has called :func:`mark_ready`
    (a rank that exits first fails here, its error above in the output; ``ready_timeout_s`` bounds the wait), then
    sets the rank-0 variables for Lightning. Leaving destroys the process group, restores the environment and waits
    for the other ranks (killing those still running after ``exit_timeout_s``); a rank that failed while this one
    succeeded fails the run.
    """

    _VARS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK", "RANK", RANK_VAR, DIR_VAR)

    def __init__(
        self,
        world_size: int,
        command: Sequence[str],
        files: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout_s: float = 1800.0,
        exit_timeout_s: float = 120.0,
    ) -> None:
        if world_size < 2:
            raise ValueError(f"RankGroup: {world_size} processes; a group needs at least 2")
        for var in ("LOCAL_RANK", "RANK", RANK_VAR):
            if var in os.environ:
                raise RuntimeError(
                    f"{var}={os.environ[var]} is set: this process is already one rank of a process group (torchrun, "
                    f"srun or another launcher); mmbench starts the {world_size} processes of trainer.devices itself"
                )
        self.world_size, self.command = world_size, list(command)
        self.files, self.env = dict(files or {}), dict(env or {})
        self.ready_timeout_s, self.exit_timeout_s = ready_timeout_s, exit_timeout_s
        self.procs: list[subprocess.Popen] = []
        self._saved: dict[str, str | None] = {}
        self.dir: Path | None = None

    def __enter__(self) -> RankGroup:
        self.dir = Path(tempfile.mkdtemp(prefix="mmbench-ddp-"))
        for name, text in self.files.items():
            (self.dir / name).write_text(text)
        common = {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(_free_port()),
            "WORLD_SIZE": str(self.world_size),
            "NODE_RANK": "0",
            DIR_VAR: str(self.dir),
        }
        try:
            for rank in range(1, self.world_size):
                rank_env = {"LOCAL_RANK": str(rank), "RANK": str(rank), RANK_VAR: str(rank)}
                env = {**os.environ, **self.env, **common, **rank_env}
                self.procs.append(subprocess.Popen(self.command, env=env, cwd=os.getcwd()))
            self._wait_ready()
        except BaseException:
            self._stop(timeout=0)
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self._saved = {var: os.environ.get(var) for var in self._VARS}
        os.environ.update({**common, "LOCAL_RANK": "0", "RANK": "0", RANK_VAR: "0"})
        log.info(
            "DDP: %d processes (ranks 1..%d started: pids %s)",
            self.world_size,
            self.world_size - 1,
            [p.pid for p in self.procs],
        )
        return self

    def _wait_ready(self) -> None:
        assert self.dir is not None
        deadline = time.monotonic() + self.ready_timeout_s
        waiting = set(range(1, self.world_size))
        while waiting:
            for rank in sorted(waiting):
                if (self.dir / f"ready.{rank}").exists():
                    waiting.discard(rank)
                elif (rc := self.procs[rank - 1].poll()) is not None:
                    raise RuntimeError(f"DDP rank {rank} exited with code {rc} before training (its error is above)")
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(f"DDP ranks {sorted(waiting)} not ready to train after {self.ready_timeout_s:.0f} s")
            if waiting:
                time.sleep(0.05)

    def _stop(self, timeout: float) -> list[int | None]:
        end = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(timeout=max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return [p.returncode for p in self.procs]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for var, value in self._saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        codes = self._stop(self.exit_timeout_s if exc_type is None else 10.0)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        failed = {rank: rc for rank, rc in enumerate(codes, start=1) if rc != 0}
        if failed and exc_type is None:
            raise RuntimeError(f"DDP ranks failed (rank: exit code): {failed}; their errors are above")
