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


def test_same_weights_as_the_unrefactored_closed_form():
    """The memory-lean fit (float64 Gram from the sparse product, in-place scaling) gives exactly the weights of
    the plain formula ``B = -P / diag(P)`` with a dense float32 Gram cast to float64."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 400), rng.integers(0, 25, 400)
    train = make_interactions(sorted(set(zip(users.tolist(), items.tolist(), strict=True))), 30, 25)
    X = train.to_csr()
    G = (X.T @ X).toarray().astype(np.float64)
    G[np.diag_indices_from(G)] += 7.0
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    B[np.diag_indices_from(B)] = 0.0
    np.testing.assert_array_equal(EASE(reg=7.0).fit(train).B, B.astype(np.float32))


def test_refuses_a_catalogue_whose_inverse_does_not_fit_naming_the_memory():
    # 4 items need 32 * 16 = 512 bytes; a cap of 256 bytes refuses before any work
    with pytest.raises(MemoryError, match=r"EASE on 4 items needs about 0\.0 GB .*model.max_memory_gb=2\.38419e-07"):
        EASE(reg=1.0, max_memory_gb=256 / 2**30).fit(TRAIN)
    EASE(reg=1.0, max_memory_gb=512 / 2**30).fit(TRAIN)  # exactly enough
    with pytest.raises(MemoryError, match=r"100,000 items needs about 298\.0 GB"):
        EASE(max_memory_gb=64).check_memory(100_000)
    with pytest.raises(ValueError, match="model.max_memory_gb"):
        EASE(max_memory_gb=0)
