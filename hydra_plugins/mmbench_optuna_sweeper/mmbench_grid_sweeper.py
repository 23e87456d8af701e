"""Registers ``hydra/sweeper=mmbench_grid`` (``mmbench.search.GridSweeper``: the basic grid sweeper with a cheaper
check before the jobs). No ``from __future__ import annotations``: see mmbench_optuna_sweeper.py."""

from dataclasses import dataclass
from typing import Dict, Optional  # noqa: UP035

from hydra.core.config_store import ConfigStore

from mmbench.search import GridSweeper


class MmbenchGridSweeper(GridSweeper):
    """The plugin class (Hydra only instantiates plugins defined inside ``hydra_plugins``)."""


@dataclass
class MmbenchGridSweeperConf:
    _target_: str = "hydra_plugins.mmbench_optuna_sweeper.mmbench_grid_sweeper.MmbenchGridSweeper"
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[Dict[str, str]] = None  # noqa: UP006, UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="mmbench_grid", node=MmbenchGridSweeperConf, provider="mmbench"
)
