"""Config helpers: resolvers, strict validation of ``_target_`` nodes before any work starts, flattening."""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


class ConfigError(ValueError):
    """The composed config cannot be built: names the key, the value and the valid choices."""


def chosen_option(group: str) -> str:
    """The option of config ``group`` this Hydra run composed (``${mmbench.choice:model}`` in conf/config.yaml)."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice:
            return str(choice)
    raise ConfigError(
        f"the chosen `{group}` option is only known inside a Hydra run: outside the CLI compose the config with "
        f"mmbench.config.compose([...]) (it records it), or give {group}_name=<option> explicitly"
    )


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("mmbench.choice"):
        OmegaConf.register_new_resolver("mmbench.choice", chosen_option)
    if not OmegaConf.has_resolver("mmbench.cwd"):
        OmegaConf.register_new_resolver("mmbench.cwd", lambda: os.getcwd())
    if not OmegaConf.has_resolver("mmbench.name"):  # ${mmbench.name:${dataset._target_}} -> "movielens100k"
        OmegaConf.register_new_resolver("mmbench.name", lambda target: str(target).rsplit(".", 1)[-1].lower())


register_resolvers()


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> DictConfig:
    """The config that ``mmbench <overrides>`` runs, composed outside a Hydra run (tests, scripts, experiment
    drivers): ``model_name`` is set to the chosen ``conf/model`` option from Hydra's runtime choices, as the
    CLI resolves it, unless given explicitly; the ``hydra`` node is dropped."""
    if GlobalHydra.instance().is_initialized():  # inside initialize_config_dir(...) or a running Hydra app
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    else:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    choice = cfg.hydra.runtime.choices.get("model")
    with open_dict(cfg):
        if "model_name" in cfg and OmegaConf.is_interpolation(cfg, "model_name") and choice:
            cfg.model_name = str(choice)
        del cfg["hydra"]
    return cfg


def import_target(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    try:
        obj = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"cannot import {path!r}: {e}") from None


def _target_nodes(node: Any, key: str = "") -> Iterator[tuple[str, DictConfig]]:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            yield key, node
        for k in node.keys():
            if k == "hydra":
                continue
            # an interpolation points at a node visited where it is defined (resolving it here could need a run)
            if not OmegaConf.is_missing(node, k) and not OmegaConf.is_interpolation(node, k):
                yield from _target_nodes(node[k], f"{key}.{k}" if key else str(k))
    elif isinstance(node, ListConfig):
        for i, v in enumerate(node):
            yield from _target_nodes(v, f"{key}[{i}]")


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return isinstance(value, (list, tuple, ListConfig))
    return True  # objects built by nested _target_ nodes, callables, ...: checked when built


@functools.cache
def _signature(target: str) -> tuple[Mapping[str, inspect.Parameter], dict[str, Any]] | None:
    """The parameters and resolved type hints of ``target``'s constructor (None: no signature to check), read once
    per process: every job of a multirun validates the same classes."""
    obj = import_target(target)
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:
        hints = {}
    return sig.parameters, hints


def validate(cfg: DictConfig, skip: Sequence[str] = ()) -> None:
    """Check every ``_target_`` node against its constructor before anything runs.

    Unknown keys, missing required arguments and values of the wrong type raise
    :class:`ConfigError` naming the config key and the valid choices. ``skip``: top-level keys whose nodes the run
    never builds (the pipeline skips ``callbacks``, Lightning's classes, for models that are not neural: checking
    them would import Lightning, seconds of start-up, for nothing).
    """
    for key, node in _target_nodes(cfg):
        if key.split(".", 1)[0] in skip:
            continue
        target = node["_target_"]
        signature = _signature(target)
        if signature is None:
            continue
        params, hints = signature
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        valid = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        given = [k for k in node.keys() if k not in _HYDRA_KEYS]
        unknown = [k for k in given if k not in params]
        if unknown and not accepts_any:
            raise ConfigError(f"{key}: unknown key(s) {unknown} for {target}; valid keys: {valid}")
        if not node.get("_partial_", False):
            missing = [n for n in valid if params[n].default is inspect.Parameter.empty and n not in given]
            if missing:
                raise ConfigError(f"{key}: {target} needs {missing}")
        for k in given:
            if OmegaConf.is_missing(node, k):
                raise ConfigError(f"{key}.{k} has no value (???): give it, e.g. `mmbench {key}.{k}=...`")
            if k not in params:
                continue
            value = node[k]
            if isinstance(value, DictConfig):
                continue
            if not _type_ok(value, hints.get(k, params[k].annotation)):
                raise ConfigError(f"{key}.{k}={value!r}: expected {hints.get(k, params[k].annotation)}")


def flatten(cfg: Mapping[str, Any] | DictConfig, prefix: str = "") -> dict[str, Any]:
    """``{"model.embedding_dim": 64, ...}`` for logging as run parameters."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out
