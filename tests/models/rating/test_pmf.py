"""PMF: SVD without biases, its updates against the reference loop; unknown pairs get the global mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmbench.models.rating.pmf import PMF
from tests.helpers import surprise_reference as _reference
from tests.helpers.data import make_interactions


def test_matches_the_unbiased_reference_loop_and_falls_back():
    rng = np.random.default_rng(2)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 5, 25), rng.integers(0, 4, 25))})
    r = rng.integers(1, 6, len(pairs)).astype(float)
    train = make_interactions(pairs, 6, 4, r.tolist())  # user 5: no ratings
    m = PMF(n_factors=2, n_epochs=3, lr_all=0.05, reg_all=0.1, seed=4).fit(train)
    g = np.random.default_rng(4)
    pu, qi = g.normal(0, 0.1, (6, 2)), g.normal(0, 0.1, (4, 2))
    _, _, pu, qi = _reference.svd(train.users, train.items, r, pu, qi, 3, 0.05, 0.1, 0.0, biased=False)
    np.testing.assert_allclose(m.pu[:5], pu[:5], atol=1e-12)
    np.testing.assert_allclose(m.bu, 0.0)
    u, i = int(train.users[0]), 1
    assert m.predict(torch.tensor([u]), torch.tensor([i])).item() == pytest.approx(np.clip(pu[u] @ qi[i], 1, 5))
    assert m.predict(torch.tensor([5]), torch.tensor([0])).item() == pytest.approx(r.mean())
