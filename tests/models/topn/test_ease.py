import numpy as np
import pytest
import torch

from mmbench.models.topn.ease import EASE
from tests.helpers.data import make_interactions

# u0: i0 i1 | u1: i0 i1 i2 | u2: i2 i3 | u3: i1 i2
TRAIN = make_interactions([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3), (3, 1), (3, 2)], 4, 4)


def ridge_without_self(X: np.ndarray, reg: float) -> np.ndarray:
    """Column j of B solved directly: min |x_j - X_{-j} b|² + reg |b|² over the other items (B_jj = 0)."""
    n = X.shape[1]
    B = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        Xo = X[:, others]
        B[others, j] = np.linalg.solve(Xo.T @ Xo + reg * np.eye(n - 1), Xo.T @ X[:, j])
    return B


def test_closed_form_equals_per_column_ridge_solution():
    X = TRAIN.to_csr().toarray()
    for reg in (0.5, 3.0):
        m = EASE(reg=reg).fit(TRAIN)
        B = ridge_without_self(X, reg)
        np.testing.assert_allclose(m.B, B, atol=1e-5)
        torch.testing.assert_close(
            m.score(torch.arange(4)), torch.tensor(X @ B, dtype=torch.float32), atol=1e-5, rtol=0
        )


def test_known_ranking_and_item_subset():
    m = EASE(reg=0.5).fit(TRAIN)
    s = m.score(torch.tensor([0]))
    # u0 saw i0, i1; i2 co-occurs with both of them (u1, u3), i3 with neither
    assert s[0, 2] > s[0, 3]
    torch.testing.assert_close(
        m.score(torch.tensor([0, 2]), torch.tensor([3, 1])), m.score(torch.tensor([0, 2]))[:, [3, 1]]
    )
    with pytest.raises(ValueError, match="model.reg"):
        EASE(reg=0.0)
