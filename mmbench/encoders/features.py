"""The encoder stage of a run: ``encoders`` (modality -> encoder) turns dataset content into item features."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mmbench.data.interactions import Dataset, ItemContent
from mmbench.encoders.base import Encoder, ModalityFeatures
from mmbench.encoders.cache import cached_extract
from mmbench.encoders.precomputed import PrecomputedEncoder

log = logging.getLogger(__name__)


def build_features(
    encoders: Mapping[str, Encoder], ds: Dataset, cache_dir: str | Path
) -> tuple[dict[str, ModalityFeatures], dict[str, str], dict[str, float]]:
    """Features per modality, run tags (``encoder.<modality>.<key>``) and seconds spent per modality.

    Frozen encoders go through the on-disk cache; trainable ones are handed over unbuilt. A modality the
    dataset lacks fails naming the modalities it has (a precomputed encoder needs none).
    """
    out: dict[str, ModalityFeatures] = {}
    tags: dict[str, str] = {}
    times: dict[str, float] = {}
    for modality, enc in encoders.items():
        if not isinstance(enc, Encoder):
            raise TypeError(f"encoders.{modality}: expected an mmbench Encoder, got {type(enc).__name__}")
        content = ds.content.get(modality)
        if content is None:
            if not isinstance(enc, PrecomputedEncoder):
                raise ValueError(
                    f"encoders.{modality}: dataset {ds.name!r} has no {modality!r} content "
                    f"(it has {sorted(ds.content)}); use a precomputed encoder for external features"
                )
            content = ItemContent(modality, np.asarray(ds.item_ids), np.ones(ds.n_items, bool))
        t = time.perf_counter()
        mask = enc.mask(content, ds.item_ids)
        enc_tags = {f"encoder.{modality}.{k}": v for k, v in enc.tags().items()}
        enc_tags[f"encoder.{modality}"] = type(enc).__name__
        if enc.trainable:
            feats = ModalityFeatures(modality, mask, encoder=enc, content=content, tags=enc_tags)
        else:
            values = cached_extract(enc, content, ds.item_ids, cache_dir)
            feats = ModalityFeatures(modality, mask, values=values, tags=enc_tags)
        times[f"time/encode_{modality}_s"] = time.perf_counter() - t
        log.info("modality %s: %d of %d items, %s", modality, mask.sum(), len(mask), type(enc).__name__)
        out[modality] = feats
        tags.update(enc_tags)
    return out, tags, times
