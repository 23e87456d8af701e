"""The denoising-autoencoder content encoder: a linear autoencoder reaches the PCA optimum, held-out items' content
never reaches the fit, the cache key holds the base encoder's configuration and the fitted rows, the encoder stage
fits it on the training items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.data.interactions import ItemContent
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features
from mmbench.encoders.autoencoder import AutoencoderEncoder
from mmbench.encoders.precomputed import MultiHotEncoder
from mmbench.encoders.text import TfidfEncoder


def clustered(n: int = 120, d: int = 12, seed: int = 0) -> np.ndarray:
    """Multi-hot rows from three clusters of 4 features each, with noise bits."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) < 0.05).astype(np.float32)
    for k in range(n):
        c = k % 3
        x[k, 4 * c : 4 * c + 4] = rng.random(4) < 0.8
    return x


def test_linear_autoencoder_reaches_the_pca_reconstruction_error():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + 0.3 * rng.normal(size=(200, 6))).astype(np.float32)
    enc = AutoencoderEncoder(MultiHotEncoder(), bottleneck=2, hidden_dims=[], noise=0.0, epochs=400, lr=0.02)
    content = ItemContent("x", x, np.ones(200, bool))
    codes = enc.extract(content, None)
    z = (x - x.mean(0)) / x.std(0)
    eig = np.sort(np.linalg.eigvalsh(np.cov(z.T, bias=True)))[::-1]
    optimum = eig[2:].sum() / 6  # the mean squared error of the best rank-2 reconstruction (PCA)
    assert codes.shape == (200, 2)
    assert optimum <= enc._losses[-1] < 1.1 * optimum, (enc._losses[-1], optimum)
    assert enc._losses[-1] < 0.5 * enc._losses[0]


def test_held_out_items_content_never_reaches_the_fit_and_masked_items_are_zero():
    x = clustered()
    fit = np.arange(120) < 90  # items 90.. are held out (e.g. cold test items)
    mask = np.ones(120, bool)
    mask[5] = False
    enc = AutoencoderEncoder(MultiHotEncoder(), bottleneck=3, hidden_dims=[8], epochs=20)
    codes = enc.extract(ItemContent("genres", x, mask), None, fit=fit)
    changed = x.copy()
    changed[90:] = 1 - changed[90:]  # different held-out content: the same network, the same training-item codes
    again = enc.extract(ItemContent("genres", changed, mask), None, fit=fit)
    np.testing.assert_array_equal(codes[:90], again[:90])
    assert not np.allclose(codes[90:], again[90:])  # ... which does encode the held-out items
    assert codes.shape == (120, 3) and not codes[5].any() and np.abs(codes[mask]).sum(1).min() > 0
    seen = AutoencoderEncoder(MultiHotEncoder(), bottleneck=3, hidden_dims=[8], epochs=20, transductive=True)
    assert seen.fit_rows(fit) is None and enc.fit_rows(fit) is fit  # transductive: fit on every item


def test_bottleneck_keeps_the_clusters_apart():
    x = clustered()
    codes = AutoencoderEncoder(MultiHotEncoder(), bottleneck=2, hidden_dims=[16], epochs=150).extract(
        ItemContent("genres", x, np.ones(120, bool)), None
    )
    labels = np.arange(120) % 3
    centres = np.stack([codes[labels == c].mean(0) for c in range(3)])
    nearest = np.argmin(((codes[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.9


def test_cache_key_holds_the_base_config_and_the_fitted_rows():
    content = ItemContent("genres", clustered(), np.ones(120, bool))
    fit = np.arange(120) < 90
    key = AutoencoderEncoder(MultiHotEncoder()).cache_key(content, fit)
    assert key == AutoencoderEncoder(MultiHotEncoder()).cache_key(content, fit)  # no object address in the key
    assert key != AutoencoderEncoder(MultiHotEncoder(normalize=True)).cache_key(content, fit)
    assert key != AutoencoderEncoder(MultiHotEncoder(), bottleneck=32).cache_key(content, fit)
    assert key != AutoencoderEncoder(MultiHotEncoder()).cache_key(content, np.arange(120) < 91)
    cfg = AutoencoderEncoder(TfidfEncoder(max_features=7)).config()
    assert cfg["base"]["max_features"] == 7 and cfg["base"]["class"].endswith("TfidfEncoder")
    # the network trains in float32 torch: its thread count is in the key (and the base's execution, none here)
    execution = AutoencoderEncoder(MultiHotEncoder()).execution()
    assert execution["threads"] == torch.get_num_threads() and execution["base"] == {}


def test_encoder_stage_fits_on_the_training_items(tmp_path):
    ds = Synthetic(n_users=30, n_items=40, interactions_per_user=5).read()
    train = ds.interactions.subset(np.flatnonzero(ds.interactions.items < 30))
    enc = AutoencoderEncoder(TfidfEncoder(), bottleneck=4, hidden_dims=[8], epochs=5)
    feats, tags, _ = build_features({"text": enc}, ds, tmp_path, train)
    assert tags["encoder.text"] == "AutoencoderEncoder" and tags["encoder.text.fit"] == "train"
    assert tags["encoder.text.base"] == "TfidfEncoder"
    assert feats["text"].values.shape == (40, 4)
    with pytest.raises(ValueError, match="frozen mmbench Encoder"):
        AutoencoderEncoder(object())  # type: ignore[arg-type]


def test_global_random_state_is_left_alone():
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    AutoencoderEncoder(MultiHotEncoder(), epochs=2).extract(ItemContent("g", clustered(), np.ones(120, bool)), None)
    assert torch.equal(torch.rand(1), expected)


def test_base_features_go_through_the_cache_once(tmp_path, monkeypatch):
    content = ItemContent("genres", clustered(), np.ones(120, bool))
    calls = []
    real = MultiHotEncoder.extract

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MultiHotEncoder, "extract", counted)
    a = AutoencoderEncoder(MultiHotEncoder(), bottleneck=2, epochs=2, cache_dir=str(tmp_path)).extract(content, None)
    b = AutoencoderEncoder(MultiHotEncoder(), bottleneck=3, epochs=2, cache_dir=str(tmp_path)).extract(content, None)
    assert len(calls) == 1 and a.shape == (120, 2) and b.shape == (120, 3)
    assert "cache_dir" not in AutoencoderEncoder(MultiHotEncoder(), cache_dir=str(tmp_path)).config()
