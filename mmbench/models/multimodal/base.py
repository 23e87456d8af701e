"""Base of models that use item features: the pipeline calls ``set_features`` before ``fit``.

The :class:`~mmbench.models.base.Recommender` interface is unchanged; a multimodal model additionally
has ``features`` (modality -> :class:`~mmbench.encoders.ModalityFeatures`, set by the encoder stage).
Models that read user features (``user_encoders``) declare ``Capabilities(user_features=True)`` and receive
them through ``set_user_features``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.encoders.base import ModalityFeatures, TokenModule
from mmbench.models.base import Capabilities, Embedding, NeuralRecommender


class MultimodalRecommender(NeuralRecommender):
    """A neural recommender fed per-modality item features; ``modalities`` picks which of them it uses
    (``None``: every modality the run's ``encoders`` provide)."""

    capabilities = Capabilities(item_features=True, neural=True)
    min_modalities: int = 0

    def __init__(self, modalities: Sequence[str] | None = None) -> None:
        super().__init__()
        self.modalities = None if modalities is None else list(modalities)
        self.features: dict[str, ModalityFeatures] = {}
        self.user_features: dict[str, ModalityFeatures] = {}

    def set_features(self, features: dict[str, ModalityFeatures]) -> None:
        """Keep the modalities this model uses; a requested modality without features fails here, before training."""
        if self.modalities is None:
            chosen = dict(features)
        else:
            missing = [m for m in self.modalities if m not in features]
            if missing:
                raise ValueError(
                    f"{type(self).__name__}: modalities {missing} have no encoder; configured encoders: "
                    f"{sorted(features)} (add e.g. +encoder@encoders.{missing[0]}=...)"
                )
            chosen = {m: features[m] for m in self.modalities}
        if len(chosen) < self.min_modalities:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_modalities} modality with item features; "
                f"got {sorted(chosen)} (configure `encoders`)"
            )
        self.features = chosen

    def set_user_features(self, features: dict[str, ModalityFeatures]) -> None:
        """Per-user features (modality -> rows indexed by contiguous user id), all of them."""
        if features and not self.capabilities.user_features:
            raise ValueError(f"{type(self).__name__} uses no user features (got {sorted(features)})")
        self.user_features = dict(features)

    def token_modules(self) -> dict[str, TokenModule]:
        """Modalities read through a trainable token encoder, for token attributions; none by default."""
        return {}

    def check_features(self) -> None:
        """Called from ``build``: fails clearly when the model was never given its features."""
        if len(self.features) < self.min_modalities:
            raise ValueError(
                f"{type(self).__name__} needs item features: call set_features() (the pipeline does, from `encoders`)"
            )

    def build_id_embeddings(self, train: Interactions) -> None:
        """The opening of FREEDOM's, BM3's and LATTICE's ``build``: check the features, then Xavier-uniform user and
        item id embeddings (``user_emb``, ``item_emb``) of ``embedding_dim``, created and initialised in that order."""
        self.check_features()
        self.n_users, self.n_items = train.n_users, train.n_items
        self.user_emb = Embedding(self.n_users, self.embedding_dim)
        self.item_emb = Embedding(self.n_items, self.embedding_dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)
