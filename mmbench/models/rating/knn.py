"""The k-NN rating models of Surprise: KNNBasic, KNNWithMeans, KNNWithZScore, KNNBaseline.

User-based (``user_based=True``: ``x`` = users, ``y`` = items) or item-based (the roles swapped).
Similarities (``sim``): ``msd`` ``1 / (msd + 1)``, ``cosine``, ``pearson`` (means over the common
support), ``pearson_baseline`` (cosine of baseline residuals, shrunk by ``(n-1) / (n-1+shrinkage)``);
pairs with fewer than ``min_support`` common ratings get 0 (pearson_baseline: at least 2). All are dense
``n_x x n_x`` matrices from sparse products.

Prediction of ``(x, y)``: the ``k`` raters of ``y`` most similar to ``x`` (ties: earlier training events
first, as ``heapq.nlargest`` keeps them), of which those with positive similarity are used; with fewer than
``min_k`` of them the prediction is impossible (KNNBasic: global mean) or the neighbour term is dropped
(the others). The per-pair neighbour selection runs in a numba kernel (a ragged top-k per pair has no
clean array form; the kernel visits each pair's raters once, no Python per pair, allocates nothing per pair and sorts
only the ``k`` it selects). A dense or sparse matrix product over a batch would sum each pair's neighbours in another
order and so change the last bits of the scores (and with them some ties of the ranking); the kernel keeps the order.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from mmbench.data.interactions import Interactions
from mmbench.models.rating.base import RatingRecommender, compute_baselines, grouped, rating_matrix

SIMILARITIES = ("msd", "cosine", "pearson", "pearson_baseline")
_BASIC, _MEANS, _ZSCORE, _BASELINE = 0, 1, 2, 3


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=b != 0)
    return out


def similarity(
    R: sp.csr_matrix,
    name: str = "msd",
    min_support: int = 1,
    shrinkage: float = 100.0,
    residuals: np.ndarray | None = None,
) -> np.ndarray:
    """Dense ``x`` by ``x`` similarity of the rows of the ``x`` by ``y`` rating matrix ``R`` (Surprise's formulas).

    ``residuals`` (pearson_baseline): the baseline residual ``r - μ - b_x - b_y`` of each stored entry of
    ``R``, in ``R.data`` order.
    """
    if name not in SIMILARITIES:
        raise ValueError(f"model.sim={name!r}: choose one of {SIMILARITIES}")
    M = R.copy()
    M.data[:] = 1.0
    MT = M.T.tocsr()
    freq = (M @ MT).toarray()
    if name == "pearson_baseline":
        if residuals is None:
            raise ValueError("pearson_baseline needs the baseline residuals")
        R = sp.csr_matrix((residuals, R.indices, R.indptr), shape=R.shape)
        min_support = max(2, min_support)
    R2 = R.multiply(R).tocsr()
    prods = (R @ R.T).toarray()
    sqi = (R2 @ MT).toarray()  # Σ r_x² over the items x shares with x'
    sqj = sqi.T
    if name == "msd":
        sim = 1.0 / (_safe_div(sqi + sqj - 2.0 * prods, freq) + 1.0)
    elif name in ("cosine", "pearson_baseline"):
        sim = _safe_div(prods, np.sqrt(sqi * sqj))
        if name == "pearson_baseline":
            sim *= _safe_div(freq - 1.0, freq - 1.0 + shrinkage)
    else:  # pearson
        si = (R @ MT).toarray()  # Σ r_x over the common support
        sj = si.T
        num = freq * prods - si * sj
        den = (freq * sqi - si**2) * (freq * sqj - sj**2)
        sim = _safe_div(num, np.sqrt(np.maximum(den, 0.0)))
        sim[den <= 0] = 0.0
    sim[freq < min_support] = 0.0
    np.fill_diagonal(sim, 1.0)
    return sim


@numba.njit(cache=True)
def _kth_smallest(work, m, kth):  # noqa: ANN001
    """The ``kth`` smallest (0-based) of ``work[:m]``, by an in-place quickselect (``work`` is scratch): the value
    ``np.partition(work[:m], kth)[kth]`` gives, without allocating."""
    lo, hi = 0, m - 1
    while lo < hi:
        pivot = work[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while work[i] < pivot:
                i += 1
            while work[j] > pivot:
                j -= 1
            if i <= j:
                work[i], work[j] = work[j], work[i]
                i += 1
                j -= 1
        if kth <= j:
            hi = j
        elif kth >= i:
            lo = i
        else:
            return work[kth]
    return work[kth]


@numba.njit(cache=True)
def _knn_kernel(xs, ys, y_ptr, y_x, y_r, sim, k, min_k, mode, means, sigmas, bx, by, gm):  # noqa: ANN001
    """Estimates and possible-flags of the pairs ``(xs[p], ys[p])``; raters of ``y`` are
    ``y_x[y_ptr[y]:y_ptr[y+1]]`` with ratings ``y_r``, in training order.

    Nothing is allocated per pair (a full ranking asks for every user x item pair): the k-th value by an in-place
    quickselect on a scratch copy, the chosen raters ordered by a stable insertion sort (the order a stable
    mergesort gives), so the sums run in the same order as before, bit for bit."""
    n = len(xs)
    est = np.empty(n)
    ok = np.ones(n, np.bool_)
    buf = np.empty(sim.shape[0])
    work = np.empty(sim.shape[0])
    chosen = np.empty(max(k, sim.shape[0]), np.int64)
    for p in range(n):
        x, y = xs[p], ys[p]
        s0, s1 = y_ptr[y], y_ptr[y + 1]
        m = s1 - s0
        for t in range(m):
            buf[t] = -sim[x, y_x[s0 + t]]
        if m > k:  # the k first of the stable order by -sim: a selection, then a sort of the k chosen
            for t in range(m):
                work[t] = buf[t]
            thr = _kth_smallest(work, m, k - 1)  # the k-th smallest -sim
            n_below = 0
            for t in range(m):
                n_below += buf[t] < thr
            c, ties = 0, k - n_below
            for t in range(m):  # in training order: all below the threshold, the earliest ties at it
                if buf[t] < thr or (buf[t] == thr and ties > 0):
                    ties -= buf[t] == thr
                    chosen[c] = t
                    c += 1
            for a in range(1, k):  # stable insertion sort of the chosen by -sim
                t = chosen[a]
                v = buf[t]
                b = a - 1
                while b >= 0 and buf[chosen[b]] > v:
                    chosen[b + 1] = chosen[b]
                    b -= 1
                chosen[b + 1] = t
            n_sel = k
        else:
            for t in range(m):
                chosen[t] = t
            n_sel = m
        sum_sim = 0.0
        sum_r = 0.0
        actual_k = 0
        for q in range(n_sel):
            t = chosen[q]
            s = -buf[t]
            if s > 0:
                nb = y_x[s0 + t]
                r = y_r[s0 + t]
                sum_sim += s
                actual_k += 1
                if mode == _BASIC:
                    sum_r += s * r
                elif mode == _MEANS:
                    sum_r += s * (r - means[nb])
                elif mode == _ZSCORE:
                    sum_r += s * (r - means[nb]) / sigmas[nb]
                else:
                    sum_r += s * (r - (gm + bx[nb] + by[y]))
        if mode == _BASIC:
            if actual_k < min_k or sum_sim == 0:
                ok[p] = False
                est[p] = 0.0
            else:
                est[p] = sum_r / sum_sim
            continue
        if actual_k < min_k:
            sum_r = 0.0
        term = sum_r / sum_sim if sum_sim != 0 else 0.0
        if mode == _MEANS:
            est[p] = means[x] + term
        elif mode == _ZSCORE:
            est[p] = means[x] + term * sigmas[x]
        else:
            est[p] = gm + bx[x] + by[y] + term
    return est, ok


class _KNN(RatingRecommender):
    """Shared fit (similarities, rater lists, means) and vectorised estimate of the k-NN family."""

    _mode = _BASIC

    def __init__(
        self,
        k: int = 40,
        min_k: int = 1,
        sim: str = "msd",
        user_based: bool = True,
        min_support: int = 1,
        shrinkage: float = 100.0,
        baseline_method: str = "als",
        baseline_epochs: int | None = None,
        reg_u: float = 15.0,
        reg_i: float = 10.0,
        reg: float = 0.02,
        learning_rate: float = 0.005,
    ) -> None:
        if k < 1 or min_k < 0:
            raise ValueError(f"model.k must be >= 1 and model.min_k >= 0, got k={k}, min_k={min_k}")
        if sim not in SIMILARITIES:
            raise ValueError(f"model.sim={sim!r}: choose one of {SIMILARITIES}")
        self.k, self.min_k, self.sim_name, self.user_based = k, min_k, sim, user_based
        self.min_support, self.shrinkage = min_support, shrinkage
        self.bsl = dict(
            method=baseline_method,
            n_epochs=baseline_epochs,
            reg_u=reg_u,
            reg_i=reg_i,
            reg=reg,
            learning_rate=learning_rate,
        )

    def _fit(self, train: Interactions) -> None:
        x, y = (train.users, train.items) if self.user_based else (train.items, train.users)
        n_x, n_y = (train.n_users, train.n_items) if self.user_based else (train.n_items, train.n_users)
        r = train.ratings.astype(np.float64)
        need_bsl = self._mode == _BASELINE or self.sim_name == "pearson_baseline"
        if need_bsl:
            bu, bi = compute_baselines(train, self.global_mean, **self.bsl)
            self.bx, self.by = (bu, bi) if self.user_based else (bi, bu)
        else:
            self.bx, self.by = np.zeros(n_x), np.zeros(n_y)
        R = rating_matrix(train, self.user_based)
        residuals = None
        if self.sim_name == "pearson_baseline":
            rows = np.repeat(np.arange(n_x), np.diff(R.indptr))
            residuals = R.data - self.global_mean - self.bx[rows] - self.by[R.indices]
        self.sim = similarity(R, self.sim_name, self.min_support, self.shrinkage, residuals)
        self.y_ptr, pos = grouped(y, n_y)
        self.y_x, self.y_r = x[pos].astype(np.int64), r[pos]
        n = np.bincount(x, minlength=n_x)
        self.means = np.bincount(x, r, minlength=n_x) / np.maximum(n, 1)
        sd = np.sqrt(np.bincount(x, (r - self.means[x]) ** 2, minlength=n_x) / np.maximum(n, 1))
        self.sigmas = np.where(sd == 0, np.std(r), sd)  # Surprise: the overall sigma where a sigma is 0

    def _estimate(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        known = self.known_user(users) & self.known_item(items)
        xs, ys = (users, items) if self.user_based else (items, users)
        est = np.zeros(len(users))
        ok = np.zeros(len(users), bool)
        if known.any():
            e, o = _knn_kernel(
                xs[known],
                ys[known],
                self.y_ptr,
                self.y_x,
                self.y_r,
                self.sim,
                self.k,
                self.min_k,
                self._mode,
                self.means,
                self.sigmas,
                self.bx,
                self.by,
                self.global_mean,
            )
            est[known], ok[known] = e, o
        return est, ok


class KNNBasic(_KNN):
    """``r̂_ui = Σ_v sim(u, v) r_vi / Σ_v sim(u, v)`` over the ``k`` nearest raters of ``i`` (user-based)."""

    _mode = _BASIC


class KNNWithMeans(_KNN):
    """``r̂_ui = μ_u + Σ_v sim(u, v) (r_vi - μ_v) / Σ_v sim(u, v)``; unknown user / item: the global mean."""

    _mode = _MEANS


class KNNWithZScore(_KNN):
    """``r̂_ui = μ_u + σ_u Σ_v sim(u, v) (r_vi - μ_v) / σ_v / Σ_v sim(u, v)`` (σ = 0 replaced by the overall σ)."""

    _mode = _ZSCORE


class KNNBaseline(_KNN):
    """``r̂_ui = b_ui + Σ_v sim(u, v) (r_vi - b_vi) / Σ_v sim(u, v)`` with ``b_ui = μ + b_u + b_i`` (baselines by
    ``baseline_method``); with an unknown user or item only the known biases remain."""

    _mode = _BASELINE

    def _default(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        bu, bi = (self.bx, self.by) if self.user_based else (self.by, self.bx)
        return (
            self.global_mean
            + np.where(self.known_user(users), bu[users], 0.0)
            + np.where(self.known_item(items), bi[items], 0.0)
        )
