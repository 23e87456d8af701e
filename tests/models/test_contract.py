"""The contract every model obeys: each ``conf/model/*.yaml`` (and ``fusion_rec`` with each ``conf/fusion/*.yaml``),
composed by Hydra as a run composes it, fitted on small synthetic data, then checked the same way.

A new model config is picked up here without writing a test: fit; ``score(users)`` has one row per user and a
column per item; ``score(users, items)`` equals those columns of ``score(users)``; scores do not depend on how the
users are batched and are identical on a second call; the evaluator scores a torch model in eval mode (and restores
its mode); a rating model's ``predict`` stays within the training rating scale; a neural model restored from its
saved ``state_dict`` scores identically, and so does the released model (``for_release()``) pickled as a run logs it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from mmbench import pipeline
from mmbench.config import CONF_DIR, validate
from mmbench.encoders import build_features
from mmbench.evaluation.evaluator import Evaluator, scoring
from mmbench.models.base import NeuralRecommender, Recommender
from mmbench.splits import load_or_create

# small data and short training: the contract is about behaviour, not accuracy
DATA = ["dataset.n_users=40", "dataset.n_items=50", "dataset.interactions_per_user=10", "dataset.image_size=8"]
TRAIN = ["trainer.max_epochs=2", "trainer.batch_size=128", "trainer.enable_progress_bar=false", "eval.progress=false"]
FROZEN = ["+encoder@encoders.image=multihot", "+encoder@encoders.text=tfidf"]
TRAINABLE = [  # the seed models' own encoders, small
    "+encoder@encoders.image=seed_cnn",
    "encoders.image.image_size=8",
    "encoders.image.out_dim=4",
    "encoders.image.filters=4",
    "+encoder@encoders.text=lstm",
    "encoders.text.vocab_size=60",
    "encoders.text.embed_dim=4",
    "encoders.text.hidden_dim=4",
    "encoders.text.max_len=8",
]
ENCODERS = {"fusion_rec": FROZEN, "vbpr": FROZEN, "freedom": FROZEN, "bm3": FROZEN, "lattice": FROZEN}
ENCODERS |= {"seed_cnn_lstm": TRAINABLE, "seed_cnn_lstm_personal": TRAINABLE}
SMALL = {  # sizes that only make the test fast
    "wmf": ["model.factors=8", "model.iterations=3"],
    "svd": ["model.n_factors=8", "model.n_epochs=3"],
    "svdpp": ["model.n_factors=8", "model.n_epochs=3"],
    "pmf": ["model.n_factors=8", "model.n_epochs=3"],
    "nmf": ["model.n_factors=4", "model.n_epochs=3"],
    "co_clustering": ["model.n_epochs=3"],
}


def cases():
    for f in sorted((CONF_DIR / "model").glob("*.yaml")):
        yield pytest.param([f"model={f.stem}", *ENCODERS.get(f.stem, []), *SMALL.get(f.stem, [])], id=f.stem)
    for f in sorted((CONF_DIR / "fusion").glob("*.yaml")):
        yield pytest.param(["model=fusion_rec", f"fusion@model.fusion={f.stem}", *FROZEN], id=f"fusion_rec-{f.stem}")


def test_every_model_and_fusion_option_is_covered():
    ids = [c.id for c in cases()]
    assert len(ids) == len(list((CONF_DIR / "model").glob("*.yaml"))) + len(list((CONF_DIR / "fusion").glob("*.yaml")))
    assert {"pop", "svd", "fusion_rec", "seed_cnn_lstm", "fusion_rec-graph"} <= set(ids)


def build(overrides: list[str], tmp_path: Path) -> tuple:
    """Compose, validate and build as ``pipeline.run`` does: data, split, features (fitted on the training part),
    model, evaluator; then fit."""
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[f"paths.work_dir={tmp_path}", "dataset=synthetic", *DATA, *TRAIN, *overrides],
        )
    validate(cfg)
    torch.manual_seed(0)
    ds = instantiate(cfg.preprocess)(instantiate(cfg.dataset).read())
    split = load_or_create(ds, instantiate(cfg.split), cfg.paths.split_dir)
    encoders = {str(m): instantiate(c) for m, c in cfg.encoders.items()}
    features = build_features(encoders, ds, tmp_path / "cache", split.train)[0] if encoders else {}
    evaluator: Evaluator = instantiate(cfg.eval)

    def make() -> Recommender:
        m = instantiate(cfg.model)
        pipeline.give_features(m, features)
        pipeline.give_user_features(m, {})
        return m

    model = make()
    if isinstance(model, NeuralRecommender):
        instantiate(cfg.trainer, checkpoint_dir=str(tmp_path / "ckpt")).fit(model, split.train, split.val, evaluator)
    else:
        model.fit(split.train, split.val)
    return model, make, split, evaluator


@pytest.mark.parametrize("overrides", cases())
def test_model_contract(overrides, tmp_path):
    model, make, split, evaluator = build(overrides, tmp_path)
    n_items = split.train.n_items
    users = torch.arange(min(13, split.train.n_users))
    items = torch.tensor([7, 0, n_items - 1, 7, n_items // 2])  # any order, repeats allowed

    # the evaluator scores in eval mode and restores the previous mode
    modes: list[bool] = []
    score = model.score

    def spy(u: torch.Tensor, i: torch.Tensor | None = None) -> torch.Tensor:
        modes.append(bool(getattr(model, "training", False)))
        return score(u, i)

    model.score = spy
    if isinstance(model, torch.nn.Module):
        model.train()
    result = evaluator.evaluate(model, split.test, [split.train, split.val])
    del model.score
    assert modes and not any(modes), "scored in training mode"
    assert getattr(model, "training", True), "the evaluator did not restore training mode"
    assert result.n_users > 0 and all(np.isfinite(v).all() for v in result.per_user.values())

    with scoring(model):
        full = model.score(users).float().cpu()
        assert full.shape == (len(users), n_items)
        assert not torch.isnan(full).any()
        some = model.score(users, items).float().cpu()
        assert some.shape == (len(users), len(items))
        torch.testing.assert_close(some, full[:, items], rtol=1e-5, atol=1e-5)
        batched = torch.cat([model.score(users[:4]).float().cpu(), model.score(users[4:]).float().cpu()])
        torch.testing.assert_close(batched, full, rtol=1e-5, atol=1e-5)
        assert torch.equal(model.score(users).float().cpu(), full), "a second call scores differently"

        if hasattr(model, "predict"):
            test = split.test
            pred = model.predict(torch.as_tensor(test.users), torch.as_tensor(test.items)).float().cpu()
            lo, hi = float(split.train.ratings.min()), float(split.train.ratings.max())
            assert pred.shape == (len(test),) and torch.isfinite(pred).all()
            assert lo <= float(pred.min()) and float(pred.max()) <= hi, (float(pred.min()), float(pred.max()))

    if isinstance(model, torch.nn.Module):
        path = tmp_path / "state.pt"
        torch.save(model.state_dict(), path)
        restored = make()
        restored.build(split.train)
        restored.load_state_dict(torch.load(path, weights_only=True))
        with scoring(restored):
            torch.testing.assert_close(restored.score(users).float().cpu(), full, rtol=1e-5, atol=1e-6)

    # the model as a run logs it (mmbench.tracking.mlflow_model.save_state: model.for_release() pickled by torch)
    path = tmp_path / "released.pt"
    torch.save(model.for_release(), path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    released = torch.load(path, weights_only=False)
    with scoring(released):
        torch.testing.assert_close(released.score(users).float().cpu(), full, rtol=1e-5, atol=1e-6)
