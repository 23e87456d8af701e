"""mmbench.models.base: Capabilities (declared once per model class, checked against its methods, read instead of type
checks) and the Embedding lookup."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from mmbench.config import CONF_DIR
from mmbench.models.base import Capabilities, Embedding, NeuralRecommender, Recommender
from tests.helpers.data import make_interactions

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


def test_every_model_config_trains_with_the_multi_tensor_adam():
    """torch's CPU default is the single-tensor Adam loop; every conf/model Adam, and the code's default, ask for the
    multi-tensor one (the same updates: next test), which is several times faster per step on CPU."""
    adams = 0
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        opt = OmegaConf.load(path).get("optimizer")
        if opt is not None and opt._target_ == "torch.optim.Adam":
            adams += 1
            assert opt.get("foreach") is True, path.name
    assert adams >= 12
    from mmbench.models.neural.bpr import BPR

    model = BPR(embedding_dim=4)
    model.build(make_interactions([(0, 0), (1, 1)], 2, 3))
    assert model.configure_optimizer().defaults["foreach"] is True


def test_the_multi_tensor_adam_takes_the_single_tensor_steps_bit_for_bit(tmp_path):
    """fusion_rec with late fusion of two modalities (id tables, towers, fusion weights: 15 parameter tensors),
    trained 3 epochs by the trainer from its conf/model config with ``foreach`` false and true: the same weights."""
    from hydra.utils import instantiate

    from mmbench.config import compose
    from mmbench.training import NeuralTrainer
    from tests.helpers.multimodal import cold_setup

    _, split, feats = cold_setup(tmp_path, n_users=60, n_items=80)
    states = []
    for foreach in (False, True):
        cfg = compose(["model=fusion_rec", "fusion@model.fusion=late", f"model.optimizer.foreach={foreach}"])
        torch.manual_seed(0)
        model = instantiate(cfg.model)
        model.set_features(feats)
        NeuralTrainer(max_epochs=3, batch_size=64, patience=3, enable_progress_bar=False).fit(model, split.train)
        states.append(model.state_dict())
    assert len(states[0]) >= 10
    for key, value in states[0].items():
        assert torch.equal(states[1][key], value), key
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in states[0].values())


@pytest.mark.parametrize("shape", [(4096,), (64, 3)])
def test_embedding_lookup_gives_nn_embeddings_values_and_gradients_bit_for_bit(shape):
    torch.manual_seed(0)
    table = Embedding(300, 16)
    reference = torch.nn.Embedding(300, 16)
    reference.weight.data.copy_(table.weight.data)
    idx = torch.randint(0, 300, shape)  # many repeated rows: their gradients are summed in the same order
    upstream = torch.randn(*shape, 16)
    out, ref = table(idx), reference(idx)
    assert out.shape == ref.shape == (*shape, 16) and torch.equal(out, ref)
    (out * upstream).sum().backward()
    (ref * upstream).sum().backward()
    assert torch.equal(table.weight.grad, reference.weight.grad)


def test_a_sparse_embedding_keeps_its_sparse_gradient():
    table = Embedding(50, 4, sparse=True)
    table(torch.tensor([1, 1, 7])).sum().backward()
    assert table.weight.grad.is_sparse
