import numpy as np
import pytest
import torch

from mmbench.evaluation.evaluator import Evaluator
from mmbench.models.topn.wmf import WMF
from tests.helpers.data import make_interactions, two_communities

# ratings matter with use_ratings: c_ui = 1 + alpha * r_ui
TRAIN = make_interactions([(0, 0), (0, 1), (1, 1), (1, 2), (2, 0), (2, 3), (3, 2)], 4, 5, [5, 1, 3, 4, 2, 5, 1])


def direct_solve(P: np.ndarray, C: np.ndarray, Y: np.ndarray, reg: float) -> np.ndarray:
    """Each row x_u = argmin Σ_i c_ui (p_ui - x·y_i)² + reg |x|², as an ordinary least-squares problem
    on the stacked system [sqrt(c_u) * Y; sqrt(reg) I] x = [sqrt(c_u) * p_u; 0]."""
    f = Y.shape[1]
    out = []
    for p, c in zip(P, C, strict=True):
        A = np.vstack([np.sqrt(c)[:, None] * Y, np.sqrt(reg) * np.eye(f)])
        b = np.concatenate([np.sqrt(c) * p, np.zeros(f)])
        out.append(np.linalg.lstsq(A, b, rcond=None)[0])
    return np.array(out)


@pytest.mark.parametrize("use_ratings", [False, True])
def test_a_user_step_is_the_least_squares_solution_of_the_objective(use_ratings):
    m = WMF(factors=3, reg=0.3, alpha=2.0, iterations=1, use_ratings=use_ratings, use_cg=False).fit(TRAIN)
    Y = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    m.als.item_factors = Y
    C_sparse = m.confidence(TRAIN)
    X = m.als.recalculate_user(np.arange(4), C_sparse)  # the user half-step for fixed item factors
    R = TRAIN.to_csr("ratings").toarray() if use_ratings else TRAIN.to_csr().toarray()
    P, C = (R > 0).astype(float), 1.0 + 2.0 * R  # c_ui = 1 + alpha r_ui, 1 where unobserved
    np.testing.assert_allclose(X, direct_solve(P, C, Y.astype(float), 0.3), atol=1e-4)


def test_objective_decreases_monotonically():
    losses = [WMF(factors=2, reg=0.1, alpha=3.0, iterations=it, use_cg=False).fit(TRAIN).loss(TRAIN) for it in range(6)]
    assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < losses[0]


def test_learns_the_community_structure():
    train, held = two_communities()
    m = WMF(factors=4, reg=0.1, alpha=5.0, iterations=10).fit(train)
    r = Evaluator(ks=[3], metrics=["recall"], progress=False).evaluate(m, held, [train])
    assert r.means["recall@3"] > 0.75  # random ranking gives 3/13 ~ 0.23
    sub = m.score(torch.tensor([0, 1]), torch.tensor([4, 2]))
    torch.testing.assert_close(sub, m.score(torch.tensor([0, 1]))[:, [4, 2]])
