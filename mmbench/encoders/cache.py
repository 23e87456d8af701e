"""On-disk cache of frozen encoder outputs, keyed by a hash of the encoder config, its execution (package
versions, threads, batch size) and the content; :func:`features_digest` names the values a run used."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder

log = logging.getLogger(__name__)


def features_digest(values: np.ndarray) -> str:
    """SHA-256 of a feature array's dtype, shape and bytes (tag ``encoder.<modality>.features_sha256``)."""
    h = hashlib.sha256(f"{values.dtype.str}{values.shape}".encode())
    h.update(np.ascontiguousarray(values).tobytes())
    return h.hexdigest()


def cached_extract(
    encoder: Encoder,
    content: ItemContent,
    item_ids: np.ndarray,
    cache_dir: str | Path,
    fit: np.ndarray | None = None,
    key: str | None = None,
) -> np.ndarray:
    """``encoder.extract`` once per (config, execution, content, fit rows): later calls read
    ``<cache_dir>/features/<key>.npy``. ``key``: ``encoder.cache_key(content, fit)`` when the caller has it."""
    key = key or encoder.cache_key(content, fit)
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
                "execution": encoder.execution(),
                "modality": content.modality,
                "entity": content.entity,
                "shape": list(values.shape),
                "features_sha256": features_digest(values),
            },
            default=str,
            indent=1,
        )
    )
    return values
