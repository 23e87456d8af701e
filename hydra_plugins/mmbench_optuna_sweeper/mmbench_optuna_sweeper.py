"""Registers ``hydra/sweeper=mmbench_optuna`` (Hydra imports the modules of ``hydra_plugins`` to find plugins).

No ``from __future__ import annotations`` here: Hydra executes this module outside ``sys.modules``,
where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # noqa: UP035

from hydra.core.config_store import ConfigStore

from mmbench.search import OptunaSweeper


class MmbenchOptunaSweeper(OptunaSweeper):
    """The plugin class (Hydra only instantiates plugins defined inside ``hydra_plugins``)."""


@dataclass
class MmbenchOptunaSweeperConf:
    _target_: str = "hydra_plugins.mmbench_optuna_sweeper.mmbench_optuna_sweeper.MmbenchOptunaSweeper"
    study_name: str = "mmbench"
    storage: Optional[str] = None  # noqa: UP045
    direction: str = "maximize"
    n_trials: int = 20
    n_jobs: int = 1
    sampler: Any = None
    pruner: Any = None
    params: Dict[str, str] = field(default_factory=dict)  # noqa: UP006
    enqueue_trials: List[Any] = field(default_factory=list)  # noqa: UP006
    final_seeds: List[int] = field(default_factory=list)  # noqa: UP006
    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 1


ConfigStore.instance().store(
    group="hydra/sweeper", name="mmbench_optuna", node=MmbenchOptunaSweeperConf, provider="mmbench"
)
