"""Every fusion with one modality missing for some items: shapes, and a missing modality never counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.encoders.base import ModalityFeatures
from mmbench.fusion import AttentionFusion, EarlyFusion, GatedFusion, GraphFusion, HybridFusion, LateFusion
from tests.helpers.data import make_interactions

N, D = 6, 4
MASK_IMG = torch.tensor([True, False, True, False, True, True])  # items 1 and 3 have no image


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    h = {s: torch.randn(N, D, generator=g).requires_grad_() for s in ("id", "text", "image")}
    mask = {"id": torch.ones(N, dtype=torch.bool), "text": torch.ones(N, dtype=torch.bool), "image": MASK_IMG}
    return h, mask


def features():
    rng = np.random.default_rng(0)
    return {
        "text": ModalityFeatures("text", np.ones(N, bool), values=rng.normal(size=(N, 5)).astype(np.float32)),
        "image": ModalityFeatures("image", MASK_IMG.numpy(), values=rng.normal(size=(N, 3)).astype(np.float32)),
    }


TRAIN = make_interactions([(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 2)], 3, N)
FUSIONS = {
    "early": lambda: EarlyFusion(hidden_dim=8),
    "late": lambda: LateFusion(),
    "late_fixed": lambda: LateFusion(weights=[1.0, 1.0, 2.0]),
    "hybrid": lambda: HybridFusion(hidden_dim=8),
    "attention": lambda: AttentionFusion(attention_dim=5),
    "gated": lambda: GatedFusion(),
    "graph": lambda: GraphFusion(k=2),
}


@pytest.mark.parametrize("name", FUSIONS)
def test_missing_modality_never_contributes(name):
    torch.manual_seed(0)
    f = FUSIONS[name]()
    f.setup(["id", "text", "image"], D, TRAIN, features())
    h, mask = inputs()
    items = torch.arange(N)
    out = f(h, mask, items)
    assert out.shape == (N, f.user_dim) and torch.isfinite(out).all()
    # change the image vectors of the items without an image: their outputs (and every other) stay the same
    h2 = dict(h)
    h2["image"] = h["image"].detach().clone()
    h2["image"][~MASK_IMG] = 100.0
    assert torch.allclose(f(h2, mask, items), out)
    # changing an available image changes that item's output
    h3 = dict(h)
    h3["image"] = h["image"] + 1.0
    assert not torch.allclose(f(h3, mask, items)[0], out[0])
    out.sum().backward()  # differentiable


def test_late_fixed_weights_by_hand():
    f = LateFusion(weights=[1.0, 1.0, 2.0])
    f.setup(["id", "text", "image"], D, TRAIN, {})
    h, mask = inputs()
    out = f(h, mask, torch.arange(N))
    # item 0 has all three sources: weights 1/4, 1/4, 1/2; item 1 lacks the image: 1/2, 1/2, 0
    assert torch.allclose(out[0], torch.cat([h["id"][0] / 4, h["text"][0] / 4, h["image"][0] / 2]))
    assert torch.allclose(out[1], torch.cat([h["id"][1] / 2, h["text"][1] / 2, torch.zeros(D)]))
    with pytest.raises(ValueError, match="need 3 non-negative weights"):
        LateFusion(weights=[1.0]).setup(["id", "text", "image"], D, TRAIN, {})


def test_attention_weights_are_a_softmax_over_available_sources():
    f = AttentionFusion(attention_dim=5)
    f.setup(["id", "text", "image"], D, TRAIN, {})
    h, mask = inputs()
    f(h, mask, torch.arange(N))
    w = f.last_weights
    assert torch.allclose(w.sum(1), torch.ones(N))
    assert torch.all(w[~MASK_IMG, 2] == 0) and torch.all(w[MASK_IMG, 2] > 0)
    d = f.diagnostics()
    assert set(d) == {"fusion/attention_id", "fusion/attention_text", "fusion/attention_image"}
    assert sum(d.values()) == pytest.approx(1.0)


def test_graph_fusion_reaches_a_cold_item_through_modalities():
    f = GraphFusion(k=2, interaction_weight=0.5)
    f.setup(["id", "text", "image"], D, TRAIN, features())
    dense = f.graph.to_dense()
    # items 3, 4, 5 have no training events: only modality edges reach them
    assert dense[3:].abs().sum() > 0 and dense[3].abs().sum() > 0
