"""Straightforward per-rating reference loops of Surprise's SGD / multiplicative updates, for tests only."""

from __future__ import annotations

import numpy as np


def by_user_order(users: np.ndarray) -> list[int]:
    seen: dict[int, list[int]] = {}
    for t, u in enumerate(users.tolist()):
        seen.setdefault(u, []).append(t)
    return [t for ts in seen.values() for t in ts]


def svd(users, items, ratings, pu, qi, n_epochs, lr, reg, mu, biased=True):
    pu, qi = pu.copy(), qi.copy()
    bu, bi = np.zeros(len(pu)), np.zeros(len(qi))
    for _ in range(n_epochs):
        for t in by_user_order(users):
            u, i, r = users[t], items[t], ratings[t]
            err = r - (mu + bu[u] + bi[i] + qi[i] @ pu[u])
            if biased:
                bu[u] += lr * (err - reg * bu[u])
                bi[i] += lr * (err - reg * bi[i])
            pu[u], qi[i] = pu[u] + lr * (err * qi[i] - reg * pu[u]), qi[i] + lr * (err * pu[u] - reg * qi[i])
    return bu, bi, pu, qi


def svdpp(users, items, ratings, pu, qi, yj, n_epochs, lr, reg, mu):
    pu, qi, yj = pu.copy(), qi.copy(), yj.copy()
    bu, bi = np.zeros(len(pu)), np.zeros(len(qi))
    rated = {u: [items[t] for t in range(len(users)) if users[t] == u] for u in set(users.tolist())}
    for _ in range(n_epochs):
        for t in by_user_order(users):
            u, i, r = users[t], items[t], ratings[t]
            iu = rated[u]
            impl = sum(yj[j] for j in iu) / np.sqrt(len(iu))
            err = r - (mu + bu[u] + bi[i] + qi[i] @ (pu[u] + impl))
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            p, q = pu[u].copy(), qi[i].copy()
            pu[u] = p + lr * (err * q - reg * p)
            qi[i] = q + lr * (err * (p + impl) - reg * q)
            for j in iu:
                yj[j] = yj[j] + lr * (err * q / np.sqrt(len(iu)) - reg * yj[j])
    return bu, bi, pu, qi, yj


def nmf(users, items, ratings, pu, qi, n_epochs, reg_pu, reg_qi):
    pu, qi = pu.copy(), qi.copy()
    for _ in range(n_epochs):
        un, ud = np.zeros_like(pu), np.zeros_like(pu)
        inum, iden = np.zeros_like(qi), np.zeros_like(qi)
        for t in by_user_order(users):
            u, i, r = users[t], items[t], ratings[t]
            est = qi[i] @ pu[u]
            un[u] += qi[i] * r
            ud[u] += qi[i] * est
            inum[i] += pu[u] * r
            iden[i] += pu[u] * est
        for u in set(users.tolist()):
            n = (users == u).sum()
            pu[u] = pu[u] * un[u] / (ud[u] + n * reg_pu * pu[u])
        for i in set(items.tolist()):
            n = (items == i).sum()
            qi[i] = qi[i] * inum[i] / (iden[i] + n * reg_qi * qi[i])
    return pu, qi
