"""Per-modality item and user encoders (frozen and cached, or trained inside the model)."""

from mmbench.encoders.base import Encoder, FeatureTable, ModalityFeatures, content_fingerprint
from mmbench.encoders.cache import cached_extract, features_digest
from mmbench.encoders.features import build_features, build_user_features

__all__ = [
    "Encoder",
    "FeatureTable",
    "ModalityFeatures",
    "build_features",
    "build_user_features",
    "cached_extract",
    "content_fingerprint",
    "features_digest",
]
