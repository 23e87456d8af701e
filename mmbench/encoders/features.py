"""The encoder stage of a run: ``encoders`` (modality -> encoder) turns dataset content into item features,
``user_encoders`` turns user content (``Dataset.user_content``) into user features, the same way."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from mmbench.data.interactions import Dataset, Interactions, ItemContent, UserContent
from mmbench.encoders.base import TRAINED, Encoder, ModalityFeatures
from mmbench.encoders.cache import cached_extract, features_digest
from mmbench.encoders.precomputed import PrecomputedEncoder

log = logging.getLogger(__name__)


def build_features(
    encoders: Mapping[str, Encoder], ds: Dataset, cache_dir: str | Path, train: Interactions | None = None
) -> tuple[dict[str, ModalityFeatures], dict[str, str], dict[str, float]]:
    """Features per modality, run tags (``encoder.<modality>.<key>``) and seconds spent per modality.

    Frozen encoders go through the on-disk cache; trainable ones are handed over unbuilt. A modality the
    dataset lacks fails naming the modalities it has (a precomputed encoder needs none). Encoders that fit
    statistics on content (``fits_content``) fit on the items of ``train`` (the pipeline passes the split's
    training part; ``None``: all items), unless ``transductive``; tagged ``encoder.<modality>.fit=train|all``.
    """
    fit = None if train is None else np.bincount(train.items, minlength=len(ds.item_ids))[: len(ds.item_ids)] > 0
    return _build(encoders, ds, ds.content, ds.item_ids, ItemContent, "encoders", "encoder", cache_dir, fit)


def build_user_features(
    encoders: Mapping[str, Encoder], ds: Dataset, cache_dir: str | Path, train: Interactions | None = None
) -> tuple[dict[str, ModalityFeatures], dict[str, str], dict[str, float]]:
    """:func:`build_features` for users: one row per user (masked where a user has no features, never
    dropped), tags ``user_encoder.<modality>.<key>``, times ``time/encode_user_<modality>_s``; statistics
    fitted on the users of ``train``."""
    fit = None if train is None else np.bincount(train.users, minlength=len(ds.user_ids))[: len(ds.user_ids)] > 0
    return _build(
        encoders, ds, ds.user_content, ds.user_ids, UserContent, "user_encoders", "user_encoder", cache_dir, fit
    )


def _build(
    encoders: Mapping[str, Encoder],
    ds: Dataset,
    contents: Mapping[str, ItemContent],
    ids: np.ndarray,
    kind: type[ItemContent],
    node: str,
    tag: str,
    cache_dir: str | Path,
    train_rows: np.ndarray | None = None,
) -> tuple[dict[str, ModalityFeatures], dict[str, str], dict[str, float]]:
    out: dict[str, ModalityFeatures] = {}
    tags: dict[str, str] = {}
    times: dict[str, float] = {}
    entity = kind.entity
    side = "" if entity == "item" else f"{entity}_"  # time/encode_image_s, time/encode_user_profile_s
    for modality, enc in encoders.items():
        if not isinstance(enc, Encoder):
            raise TypeError(f"{node}.{modality}: expected an mmbench Encoder, got {type(enc).__name__}")
        content = contents.get(modality)
        if content is None:
            if not isinstance(enc, PrecomputedEncoder):
                raise ValueError(
                    f"{node}.{modality}: dataset {ds.name!r} has no {modality!r} {side.replace('_', ' ')}content "
                    f"(it has {sorted(contents)}); use a precomputed encoder for external features"
                )
            content = kind(modality, np.asarray(ids), np.ones(len(ids), bool))
        t = time.perf_counter()
        mask = enc.mask(content, ids)
        enc_tags = {f"{tag}.{modality}.{k}": v for k, v in enc.tags().items()}
        enc_tags[f"{tag}.{modality}"] = type(enc).__name__
        if enc.trainable:  # learnt from this run's training data: no frozen weights to name
            enc_tags.setdefault(f"{tag}.{modality}.weights", TRAINED)
        fit = enc.fit_rows(train_rows)
        if enc.fits_content:
            enc_tags[f"{tag}.{modality}.fit"] = "all" if fit is None else "train"
        if enc.trainable:
            feats = ModalityFeatures(modality, mask, encoder=enc, content=content, tags=enc_tags, fit=fit)
        else:
            key = enc.cache_key(content, fit)
            values = cached_extract(enc, content, ids, cache_dir, fit, key)
            # which extraction the run read: runs of one cache key must agree (mmbench.reporting refuses otherwise)
            enc_tags[f"{tag}.{modality}.cache_key"] = key
            enc_tags[f"{tag}.{modality}.features_sha256"] = features_digest(values)
            feats = ModalityFeatures(modality, mask, values=values, tags=enc_tags)
        times[f"time/encode_{side}{modality}_s"] = time.perf_counter() - t
        log.info(
            "%s modality %s: %d of %d %ss (%d masked), %s",
            entity,
            modality,
            mask.sum(),
            len(mask),
            entity,
            (~mask).sum(),
            type(enc).__name__,
        )
        out[modality] = feats
        tags.update(enc_tags)
    return out, tags, times
