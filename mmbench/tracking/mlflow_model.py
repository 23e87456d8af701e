"""A run's fitted recommender as an MLflow pyfunc model (``logger.log_model``), imported only when one is logged
or loaded: ``mlflow.pyfunc.load_model("runs:/<run id>/model").predict(pd.DataFrame({"user": [...]}))`` gives
the rows of ``recommendations/test_topk.tsv`` for those users (``params={"k": 5}``: the first 5)."""

from __future__ import annotations

import dataclasses
import functools
import pickle
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from mmbench.tracking.recommender_model import TopK

# what loading the model needs besides mmbench itself (installed from its source: it is not on PyPI)
REQUIREMENTS = ("mlflow", "torch", "numpy", "pandas", "scipy", "numba")


def id_type(ids: np.ndarray) -> str:
    """The MLflow column type of raw ids: integers as ``long``, anything else as ``string``."""
    return "long" if np.issubdtype(ids.dtype, np.integer) else "string"


def signature(topk: TopK) -> ModelSignature:
    """Input: raw user ids (column ``user``); output: ``user rank item score`` rows; parameter ``k``."""
    user, item = id_type(topk.user_ids), id_type(topk.item_ids)
    return ModelSignature(
        inputs=Schema([ColSpec(user, "user")]),
        outputs=Schema(
            [ColSpec(user, "user"), ColSpec("long", "rank"), ColSpec(item, "item"), ColSpec("double", "score")]
        ),
        params=ParamSchema([ParamSpec("k", "long", int(topk.evaluator.max_k))]),
    )


@functools.cache
def requirements() -> tuple[str, ...]:
    """Pinned versions of :data:`REQUIREMENTS` as installed here (none inferred: MLflow's inference loads the
    model in a subprocess, seconds per run)."""
    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return tuple(out)


class TopKModel(mlflow.pyfunc.PythonModel):
    """Loads the pickled :class:`TopK` (artifact ``topk``) and answers with its top-K rows."""

    def load_context(self, context: Any) -> None:
        # torch's pickle, so a model trained on a GPU loads on a machine without one (its tensors mapped to the CPU)
        device = None if torch.cuda.is_available() else "cpu"
        self.topk: TopK = torch.load(context.artifacts["topk"], map_location=device, weights_only=False)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if "user" not in model_input:
            raise ValueError(f"the input needs a column 'user' (raw user ids); it has {list(model_input.columns)}")
        return self.topk.recommend(model_input["user"].to_numpy(), (params or {}).get("k"))


def save_state(topk: TopK, path: Path) -> int:
    """Pickle ``topk`` to ``path`` with torch (tensors loadable on another device), its model as released
    (``model.for_release()``: no user feature table); returns its size in bytes."""
    torch.save(dataclasses.replace(topk, model=topk.model.for_release()), path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    return path.stat().st_size
