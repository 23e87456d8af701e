"""Reading runs: finished MLflow runs as a frame, and their artifacts (per-user metrics, split files)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

SPARSE = "sparse"  # the per-user TSVs' column flagging the evaluator's sparse users (1) among the others (0)


class TableError(ValueError):
    """The requested runs cannot be put in one table."""


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def load_runs(tracking_uri: str, experiment: str, filter_string: str = "") -> pd.DataFrame:
    """Finished runs of ``experiment`` as a frame: ``run_id``, ``artifact_uri``, ``start_time``, ``tags.*``,
    ``params.*``, metrics; oldest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise TableError(f"no MLflow experiment {experiment!r} in {tracking_uri}; experiments: {names}")
    filt = "attributes.status = 'FINISHED'" + (f" and {filter_string}" if filter_string else "")
    rows = []
    for r in client.search_runs(
        [exp.experiment_id], filter_string=filt, max_results=50_000, order_by=["attributes.start_time ASC"]
    ):
        row = {
            "run_id": r.info.run_id,
            "artifact_uri": r.info.artifact_uri,
            "run_name": r.info.run_name,
            "start_time": r.info.start_time,
        }
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update(r.data.metrics)
        rows.append(row)
    if not rows:
        raise TableError(f"no finished runs in experiment {experiment!r} matching {filter_string!r}")
    return pd.DataFrame(rows)


def artifact(artifact_uri: str, path: str) -> Path:
    """A local path to an artifact (file or folder) of a run; remote stores are downloaded."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path) / path
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(f"{artifact_uri}/{path}"))


def per_user_frame(artifact_uri: str) -> pd.DataFrame:
    """A run's ``metrics/per_user_test.tsv``."""
    return pd.read_csv(artifact(artifact_uri, "metrics/per_user_test.tsv"), sep="\t", dtype={"user": str})


def group_flags(frame: pd.DataFrame, run_id: str, group: str = SPARSE) -> pd.Series:
    """A user-group column of a run's per-user frame (``sparse``: the evaluator's sparse users; a split's group,
    e.g. ``truncated`` of split=sparse_history) as booleans by user. The pipeline writes these 0/1 columns; a
    run without the column (an older mmbench, or a split without that group) raises :class:`TableError` naming the
    run (membership recomputed here could disagree with the run's)."""
    if group not in frame.columns:
        raise TableError(
            f"run {run_id}: metrics/per_user_test.tsv has no {group!r} column (a run from an older mmbench, or a "
            f"split without that user group); re-run it to compare the {group} users"
        )
    flags = frame[group]
    if not flags.isin([0, 1]).all():
        raise TableError(f"run {run_id}: column {group!r} of metrics/per_user_test.tsv is not 0/1: {flags.unique()}")
    return pd.Series(flags.to_numpy() == 1, index=frame["user"])


def split_folder(run: pd.Series) -> Path:
    """A run's split files: the folder of its ``split_dir`` tag, else the copy in its artifacts (``split/``)."""
    d = run.get("tags.split_dir")
    if isinstance(d, str) and (Path(d) / "train.tsv").is_file():
        return Path(d)
    return artifact(str(run["artifact_uri"]), "split")


def read_split_part(folder: Path, part: str) -> pd.DataFrame:
    """``<part>.tsv`` (train, val, test) of a saved split, user and item ids as strings."""
    return pd.read_csv(folder / f"{part}.tsv", sep="\t", dtype={"user": str, "item": str})


def finished_keys(runs: pd.DataFrame, tags: list[str]) -> set[tuple[str, ...]]:
    """The values of ``tags`` of every run that has them all (as strings): which grid entries already ran."""
    cols = [f"tags.{t}" for t in tags]
    if not set(cols) <= set(runs.columns):
        return set()
    return {tuple(r) for r in runs[cols].dropna().astype(str).itertuples(index=False)}
