"""On-disk cache of frozen encoder outputs, keyed by a hash of the encoder config and the content."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder

log = logging.getLogger(__name__)


def cached_extract(
    encoder: Encoder, content: ItemContent, item_ids: np.ndarray, cache_dir: str | Path, fit: np.ndarray | None = None
) -> np.ndarray:
    """``encoder.extract`` once per (config, content, fit rows): later calls read ``<cache_dir>/features/<key>.npy``."""
    key = encoder.cache_key(content, fit)
    folder = Path(cache_dir).expanduser() / "features"
    path = folder / f"{key}.npy"
    if path.is_file():
        values = np.load(path)
        if values.shape[0] == len(content.mask):
            log.info("features %s: read cache %s", content.modality, path)
            return values
        log.warning(
            "%s holds %d rows for %d %ss: recomputing", path, values.shape[0], len(content.mask), content.entity
        )
    values = np.ascontiguousarray(encoder.extract(content, item_ids, fit=fit), dtype=np.float32)
    if values.shape[0] != len(content.mask):
        raise RuntimeError(
            f"{type(encoder).__name__} returned {values.shape[0]} rows for {len(content.mask)} {content.entity}s"
        )
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npy")  # atomic: parallel runs never read half a file
    with os.fdopen(fd, "wb") as f:
        np.save(f, values)
    os.replace(tmp, path)
    (folder / f"{key}.json").write_text(
        json.dumps(
            {
                "encoder": encoder.config(),
                "modality": content.modality,
                "entity": content.entity,
                "shape": list(values.shape),
            },
            default=str,
            indent=1,
        )
    )
    return values
