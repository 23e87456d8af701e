"""Shared fixtures: the real ML-100K folder (skipped only when absent and not required). Helpers that tests
import live in tests/helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from mmbench.data.interactions import Dataset

torch.set_num_threads(1)


def _data_dir() -> Path | None:
    d = os.environ.get("MMBENCH_DATA_DIR")
    if d and (Path(d) / "movielens" / "ml-100k" / "u.data").is_file():
        return Path(d).resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$MMBENCH_DATA_DIR``; a missing folder skips, or fails when ``MMBENCH_REQUIRE_DATA`` is set."""
    d = _data_dir()
    if d is None:
        msg = f"ML-100K not found under MMBENCH_DATA_DIR={os.environ.get('MMBENCH_DATA_DIR')!r}"
        if os.environ.get("MMBENCH_REQUIRE_DATA"):
            pytest.fail(msg + " and MMBENCH_REQUIRE_DATA is set")
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def ml100k(data_dir: Path) -> Dataset:
    from mmbench.data.ml100k import MovieLens100K

    return MovieLens100K(str(data_dir), download=False).read()


@pytest.fixture(scope="session")
def ml1m_dir() -> Path:
    """``$MMBENCH_DATA_DIR`` when it holds ML-1M (the partial copy); skips or fails as :func:`data_dir`."""
    d = os.environ.get("MMBENCH_DATA_DIR")
    if d and (Path(d) / "movielens" / "ml-1m" / "ratings.dat").is_file():
        return Path(d).resolve()
    if os.environ.get("MMBENCH_REQUIRE_DATA"):
        pytest.fail(f"ML-1M not found under MMBENCH_DATA_DIR={d!r} and MMBENCH_REQUIRE_DATA is set")
    pytest.skip(f"ML-1M not found under MMBENCH_DATA_DIR={d!r}")


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server on 127.0.0.1 for the session (``tests/helpers/services.py``); skipped without
    Debian's ``postgresql`` binaries, failed when ``MMBENCH_REQUIRE_SERVICES`` is set."""
    import pwd

    from tests.helpers.services import Postgres, need, postgres_bindir

    bindir = postgres_bindir()
    need("no PostgreSQL server binaries (Debian: apt-get install postgresql)", bindir is not None)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            need("running as root without a 'postgres' system user to run the server as", False)
    server = Postgres(bindir).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """``mlflow server`` on 127.0.0.1 with a PostgreSQL backend and artifacts in a local folder it serves."""
    from tests.helpers.services import MLflowServer

    server = MLflowServer(postgres.database("mlflow"), tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()
