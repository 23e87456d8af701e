"""The k-NN family on a hand-computed case, similarities against a brute-force reference, ML-100K."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmbench.models.rating.base import rating_matrix
from mmbench.models.rating.knn import KNNBaseline, KNNBasic, KNNWithMeans, KNNWithZScore, similarity
from tests.helpers.data import make_interactions
from tests.helpers.ratings import MU, PAIRS, RATINGS, TRAIN

# msd similarities of u0 to the raters of i3: u1 (common i0, i1: diffs 1, 0), u2 (i0, i2: 4, 2), u3 (i1: -1)
S1, S2, S3 = 1 / (0.5 + 1), 1 / (10 + 1), 1 / (1 + 1)


def pred(model, u=0, i=3):
    return model.predict(torch.tensor([u]), torch.tensor([i])).item()


def test_msd_similarities_by_hand():
    sim = KNNBasic().fit(TRAIN).sim
    np.testing.assert_allclose(sim[0, [0, 1, 2, 3]], [1.0, S1, S2, S3])


def test_knn_basic_by_hand():
    all3 = (S1 * 5 + S2 * 2 + S3 * 1) / (S1 + S2 + S3)
    assert pred(KNNBasic().fit(TRAIN)) == pytest.approx(all3)
    assert pred(KNNBasic(k=2).fit(TRAIN)) == pytest.approx(23 / 7)  # u1 and u3 only
    assert pred(KNNBasic(min_k=4).fit(TRAIN)) == pytest.approx(MU)  # 3 neighbours < min_k: global mean
    assert pred(KNNBasic().fit(TRAIN), 0, 4) == pytest.approx(MU)  # unknown item


def test_knn_with_means_and_zscore_by_hand():
    # means u0 = 4, u1 = 4, u3 = 2.5; k=2 uses u1 (+1) and u3 (-1.5)
    assert pred(KNNWithMeans(k=2).fit(TRAIN)) == pytest.approx(4 + (S1 * 1 + S3 * -1.5) / (S1 + S3))
    assert pred(KNNWithMeans(min_k=4).fit(TRAIN)) == pytest.approx(4.0)  # too few: the user's mean
    sd0 = sd1 = math.sqrt(2 / 3)  # population std of (5, 3, 4) and (4, 3, 5); u3: (4, 1) -> 1.5
    expected = 4 + sd0 * (S1 * 1 / sd1 + S3 * -1.5 / 1.5) / (S1 + S3)
    assert pred(KNNWithZScore(k=2).fit(TRAIN)) == pytest.approx(expected)


def test_knn_baseline_by_hand():
    m = KNNBaseline(k=2).fit(TRAIN)
    bu, bi = m.bx, m.by
    base = lambda u, i: MU + bu[u] + bi[i]  # noqa: E731
    expected = base(0, 3) + (S1 * (5 - base(1, 3)) + S3 * (1 - base(3, 3))) / (S1 + S3)
    assert pred(m) == pytest.approx(expected)
    assert pred(m, 0, 4) == pytest.approx(MU + bu[0])  # unknown item: the known bias only


def test_item_based_is_user_based_on_the_transpose():
    flipped = make_interactions([(i, u) for u, i in PAIRS], 5, 4, RATINGS)
    for sim in ("msd", "cosine", "pearson", "pearson_baseline"):
        a = KNNWithMeans(k=2, sim=sim, user_based=False, reg_u=10.0, reg_i=15.0).fit(TRAIN)
        b = KNNWithMeans(k=2, sim=sim, user_based=True, reg_u=15.0, reg_i=10.0).fit(flipped)
        np.testing.assert_allclose(a.sim, b.sim)
        torch.testing.assert_close(a.score(torch.arange(4)), b.score(torch.arange(5)).T)


def _reference(R: np.ndarray, name: str, min_support: int, shrinkage: float, res: np.ndarray) -> np.ndarray:
    """Surprise's similarity formulas, pair by pair over the common support (NaN = missing)."""
    n = R.shape[0]
    out = np.eye(n)
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            c = ~np.isnan(R[a]) & ~np.isnan(R[b])
            x, y, f = R[a, c], R[b, c], c.sum()
            if f < (max(2, min_support) if name == "pearson_baseline" else min_support):
                continue
            if name == "msd":
                out[a, b] = 1 / (np.mean((x - y) ** 2) + 1)
            elif name == "cosine":
                out[a, b] = x @ y / np.sqrt((x @ x) * (y @ y))
            elif name == "pearson":
                num = f * (x @ y) - x.sum() * y.sum()
                den = np.sqrt((f * (x @ x) - x.sum() ** 2) * (f * (y @ y) - y.sum() ** 2))
                out[a, b] = num / den if den else 0.0
            else:
                dx, dy = res[a, c], res[b, c]
                out[a, b] = dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)) * (f - 1) / (f - 1 + shrinkage)
    return out


@pytest.mark.parametrize("name", ["msd", "cosine", "pearson", "pearson_baseline"])
@pytest.mark.parametrize("min_support", [1, 3])
def test_similarities_match_a_brute_force_reference(name, min_support):
    rng = np.random.default_rng(1)
    dense = np.where(rng.random((7, 9)) < 0.6, rng.integers(1, 6, (7, 9)).astype(float), np.nan)
    u, i = np.nonzero(~np.isnan(dense))
    train = make_interactions(list(zip(u.tolist(), i.tolist())), 7, 9, dense[u, i].tolist())
    res = dense - 3.0 - rng.normal(0, 0.3, 7)[:, None] - rng.normal(0, 0.3, 9)[None, :]
    R = rating_matrix(train)
    rows = np.repeat(np.arange(7), np.diff(R.indptr))
    got = similarity(R, name, min_support, 5.0, res[rows, R.indices])
    np.testing.assert_allclose(got, _reference(dense, name, min_support, 5.0, res), atol=1e-12)


def test_bad_similarity_name():
    with pytest.raises(ValueError, match="pearson_baseline"):
        KNNBasic(sim="jaccard")


@pytest.mark.parametrize(
    "cls, rmse, mae", [(KNNBasic, 0.980, 0.774), (KNNWithMeans, 0.951, 0.749), (KNNBaseline, 0.931, 0.733)]
)
def test_ml100k_5fold_matches_published(ml100k, cls, rmse, mae):
    from tests.helpers.surprise_folds import cv_metrics

    got_rmse, got_mae = cv_metrics(ml100k, cls)
    assert abs(got_rmse - rmse) < 0.005 and abs(got_mae - mae) < 0.005, (got_rmse, got_mae)


def test_equal_similarities_keep_the_earliest_training_events():
    """Four raters of item 1 are equally similar to user 0 (the same rating of item 0); k=2 keeps the two whose
    item-1 events come first in training order (Surprise's heapq.nlargest), not the lowest user ids."""
    pairs = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (4, 1), (3, 1), (1, 1), (2, 1)]
    ratings = [3, 3, 3, 3, 3, 5, 1, 2, 4]
    m = KNNBasic(k=2).fit(make_interactions(pairs, 5, 2, ratings))
    assert pred(m, 0, 1) == pytest.approx((5 + 1) / 2)  # users 4 and 3
    assert m.score(torch.tensor([0]))[0, 1].item() == pytest.approx(3.0)


@pytest.mark.parametrize("cls", [KNNBasic, KNNWithMeans, KNNWithZScore, KNNBaseline])
def test_neighbour_selection_matches_a_sorted_reference_with_many_ties(cls):
    """Whole-number ratings on few items make many msd similarities equal; every pair's estimate equals a plain
    Python one: raters sorted by (similarity descending, training position), the first k, positive ones used."""
    rng = np.random.default_rng(3)
    n_u, n_i = 40, 12
    cells = rng.permutation(n_u * n_i)[:300]
    pairs = [(int(c) // n_i, int(c) % n_i) for c in cells]
    train = make_interactions(pairs, n_u, n_i, rng.integers(1, 6, len(pairs)).tolist())
    k, min_k = 5, 2
    m = cls(k=k, min_k=min_k).fit(train)
    base = KNNBaseline(k=k).fit(train)  # its biases are the ones KNNBaseline uses
    u, i, r = train.users, train.items, train.ratings.astype(float)
    mean = np.array([r[u == x].mean() if (u == x).any() else 0.0 for x in range(n_u)])
    sd = np.array([r[u == x].std() if (u == x).any() else 0.0 for x in range(n_u)])
    sd[sd == 0] = r.std()
    users, items = np.repeat(np.arange(n_u), n_i), np.tile(np.arange(n_i), n_u)
    got = m.estimate(users, items)
    for x, y, g in zip(users, items, got, strict=True):
        if not (u == x).any() or not (i == y).any():
            continue
        raters = [(-m.sim[x, u[t]], t) for t in np.flatnonzero(i == y)]
        chosen = [(-s, t) for s, t in sorted(raters)[:k] if -s > 0]
        den = sum(s for s, _ in chosen)
        if cls is KNNBasic:
            num = sum(s * r[t] for s, t in chosen)
            want = num / den if len(chosen) >= min_k and den else m.global_mean
        else:
            if cls is KNNWithMeans:
                dev = [r[t] - mean[u[t]] for _, t in chosen]
            elif cls is KNNWithZScore:
                dev = [(r[t] - mean[u[t]]) / sd[u[t]] for _, t in chosen]
            else:
                dev = [r[t] - (m.global_mean + base.bx[u[t]] + base.by[y]) for _, t in chosen]
            num = sum(s * d for (s, _), d in zip(chosen, dev, strict=True)) if len(chosen) >= min_k else 0.0
            term = num / den if den else 0.0
            if cls is KNNWithMeans:
                want = mean[x] + term
            elif cls is KNNWithZScore:
                want = mean[x] + term * sd[x]
            else:
                want = m.global_mean + base.bx[x] + base.by[y] + term
        assert g == pytest.approx(want, abs=1e-9), (x, y)
    np.testing.assert_allclose(m.score(torch.arange(n_u)).numpy().ravel(), got, rtol=1e-6)


def sorted_reference(m, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The estimates of the k-NN kernel as plainly as possible, with its own arrays and in its order of summation:
    a pair's raters in training order, stably sorted by similarity descending and cut to ``k`` when there are more
    than ``k`` (else kept in training order), the positive ones summed one by one."""
    mode = {KNNBasic: 0, KNNWithMeans: 1, KNNWithZScore: 2, KNNBaseline: 3}[type(m)]
    out = []
    for x, y in zip(xs, ys, strict=True):
        raters = list(range(m.y_ptr[y], m.y_ptr[y + 1]))
        if len(raters) > m.k:
            raters = sorted(raters, key=lambda t: -m.sim[x, m.y_x[t]])[: m.k]
        sum_sim = sum_r = 0.0
        n = 0
        for t in raters:
            s, nb, r = m.sim[x, m.y_x[t]], m.y_x[t], m.y_r[t]
            if s > 0:
                sum_sim += s
                n += 1
                sum_r += (
                    [s * r, s * (r - m.means[nb]), s * (r - m.means[nb]) / m.sigmas[nb]][mode]
                    if mode < 3
                    else (s * (r - (m.global_mean + m.bx[nb] + m.by[y])))
                )
        if mode == 0:
            out.append(sum_r / sum_sim if n >= m.min_k and sum_sim != 0 else m.global_mean)
            continue
        term = (0.0 if n < m.min_k else sum_r) / sum_sim if sum_sim != 0 else 0.0
        base = [None, m.means[x], m.means[x], m.global_mean + m.bx[x] + m.by[y]][mode]
        out.append(base + term * m.sigmas[x] if mode == 2 else base + term)
    return np.array(out)


@pytest.mark.parametrize("user_based", [True, False])
@pytest.mark.parametrize("cls", [KNNBasic, KNNWithMeans, KNNWithZScore, KNNBaseline])
def test_full_ranking_scores_equal_the_sorted_reference_bit_for_bit(cls, user_based):
    """The allocation-free kernel (quickselect, stable insertion sort) scores every user x item pair exactly as the
    sorted reference, ties included: items with more raters than k (selection) and fewer (all raters)."""
    rng = np.random.default_rng(7)
    n_u, n_i = 30, 10
    raters = [2, 3, 4, 6, 8, 12, 16, 20, 25, 28]  # per item: fewer and more than k
    pairs = [(int(x), j) for j, n in enumerate(raters) for x in rng.choice(n_u, n, replace=False)]
    pairs = [pairs[t] for t in rng.permutation(len(pairs))]  # training order mixed
    train = make_interactions(pairs, n_u + 1, n_i, rng.integers(1, 6, len(pairs)).tolist())  # user 30: unknown
    m = cls(k=4, min_k=2, user_based=user_based).fit(train)
    users, items = np.repeat(np.arange(n_u), n_i), np.tile(np.arange(n_i), n_u)
    xs, ys = (users, items) if user_based else (items, users)
    assert np.diff(m.y_ptr).max() > 4 and np.diff(m.y_ptr).min() <= 4
    want = sorted_reference(m, xs, ys)
    np.testing.assert_array_equal(m.estimate(users, items), want)
    scores = m.score(torch.arange(n_u + 1)).numpy()
    np.testing.assert_array_equal(scores[:n_u].ravel(), want.astype(np.float32))
