"""The Hydra callback of experiment configs: at the end of a multirun, tabulate that sweep's runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf


class TableCallback(Callback):
    """Hydra callback for experiment configs: at the end of a multirun, tabulate that sweep's runs.

    In an experiment file::

        hydra:
          callbacks:
            table:
              _target_: mmbench.reporting.aggregation.TableCallback
              name: topn_ml100k
              metrics: [test/recall@20, test/ndcg@20]
              baseline: pop

    ``split_by``, ``costs``, ``means``, ``rating_ref`` and ``contribution`` (a mapping of
    :class:`Contribution`'s fields) work as in :func:`build_tables`.
    """

    def __init__(
        self,
        name: str,
        rows: Sequence[str] = ("model",),
        metrics: Sequence[str] = ("test/recall@20", "test/ndcg@20"),
        baseline: str | None = None,
        test: str = "wilcoxon",
        alpha: float = 0.05,
        results_dir: str = "results",
        plots: bool = True,
        split_by: str | None = None,
        costs: Sequence[str] = (),
        means: Sequence[str] = (),
        rating_ref: bool = False,
        contribution: Mapping[str, Any] | None = None,
    ) -> None:
        self.name, self.results_dir, self.plots, self.split_by = name, results_dir, plots, split_by
        spec = OmegaConf.to_container(contribution) if isinstance(contribution, DictConfig) else contribution
        # the tables' code (pandas, scipy.stats: ~2 s) is imported at the sweep's end; a contribution spec is
        # checked now, before any job runs
        if spec is not None:
            from mmbench.reporting.aggregation import contribution_spec

            spec = contribution_spec(**spec)
        self.options: dict[str, Any] = {
            "rows": list(rows),
            "metrics": list(metrics),
            "baseline": baseline,
            "test": test,
            "alpha": alpha,
            "costs": list(costs),
            "means": list(means),
            "rating_ref": rating_ref,
            "contribution": spec,
        }

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        from mmbench.reporting.aggregation import build_tables
        from mmbench.reporting.rendering import to_markdown, write
        from mmbench.reporting.runs import load_runs

        if not config.logger.get("tracking_uri"):  # logger=none / csv: no MLflow runs to tabulate
            print(f"no table: {config.logger.get('_target_')} records no MLflow runs (logger=mlflow tabulates)")
            return
        sweep_id = str(Path(config.hydra.sweep.dir).resolve())
        runs = load_runs(config.logger.tracking_uri, config.experiment_name, f"tags.sweep_id = '{sweep_id}'")
        tables = build_tables(runs, self.split_by, **self.options)
        command = " ".join(["mmbench", *config.hydra.overrides.task])
        if config.hydra.overrides.task and not any(o.startswith("experiment=") for o in config.hydra.overrides.task):
            command = "mmbench -m " + " ".join(config.hydra.overrides.task)
        out = write(tables, runs, Path(config.paths.work_dir) / self.results_dir / self.name, command, self.plots)
        for t in tables.values():
            print(to_markdown(t))
        print(f"table written to {out}")
