"""Capabilities: declared once per model class, checked against its methods, read instead of type checks."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from mmbench.config import CONF_DIR
from mmbench.models.base import Capabilities, NeuralRecommender, Recommender

RATING, ITEM, USER, NEURAL = "predicts_ratings", "item_features", "user_features", "neural"
# what each conf/model option does, written from the models' documentation (README tables), not from the code
EXPECTED = {
    "baseline_only": {RATING},
    "normal_predictor": {RATING},
    "knn_basic": {RATING},
    "knn_with_means": {RATING},
    "knn_with_zscore": {RATING},
    "knn_baseline": {RATING},
    "slope_one": {RATING},
    "co_clustering": {RATING},
    "svd": {RATING},
    "svdpp": {RATING},
    "nmf": {RATING},
    "pmf": {RATING},
    "pop": set(),
    "random": set(),
    "itemknn": set(),
    "userknn": set(),
    "ease": set(),
    "wmf": set(),
    "bpr": {NEURAL},
    "lightgcn": {NEURAL},
    "multivae": {NEURAL},
    "multdae": {NEURAL},
    "neumf": {NEURAL},
    "bm3": {ITEM, NEURAL},
    "lattice": {ITEM, NEURAL},
    "fusion_rec": {ITEM, USER, NEURAL},
    "vbpr": {ITEM, NEURAL},
    "freedom": {ITEM, NEURAL},
    "seed_cnn_lstm": {RATING, ITEM, NEURAL},
    "seed_cnn_lstm_personal": {RATING, ITEM, NEURAL},
}


def test_every_model_option_declares_what_it_does():
    options = sorted(f.stem for f in (CONF_DIR / "model").glob("*.yaml"))
    assert options == sorted(EXPECTED), "a new conf/model option needs its row in EXPECTED"
    for name in options:
        cls = get_class(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml")._target_)
        caps = cls.capabilities
        assert {f for f in (RATING, ITEM, USER, NEURAL) if getattr(caps, f)} == EXPECTED[name], name
        assert caps.neural == issubclass(cls, NeuralRecommender), name


def test_a_declaration_without_its_methods_fails_at_class_definition():
    with pytest.raises(TypeError, match=r"Bad declares predicts_ratings=True but has no \['predict'\]"):

        class Bad(Recommender):
            capabilities = Capabilities(predicts_ratings=True)

    with pytest.raises(TypeError, match="has predict\\(\\) but does not declare"):

        class Undeclared(Recommender):
            def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
                return torch.zeros(len(users))

    with pytest.raises(TypeError, match=r"declares neural=True but has no \['build', 'loss', 'train_data'\]"):

        class NotNeural(Recommender):
            capabilities = Capabilities(neural=True)
