"""A user-item graph small enough to propagate by hand, and its normalised adjacency."""

from __future__ import annotations

import math

import numpy as np

from tests.helpers.data import make_interactions

# 3 users, 3 items: u0-i0, u0-i1, u1-i1, u2-i1, u2-i2. Degrees: u0 2, u1 1, u2 2; i0 1, i1 3, i2 1.
# Nodes are ordered u0 u1 u2 i0 i1 i2; Â[u, i] = 1 / sqrt(deg u * deg i).
GRAPH = make_interactions([(0, 0), (0, 1), (1, 1), (2, 1), (2, 2)], 3, 3)
S2, S3, S6 = math.sqrt(2), math.sqrt(3), math.sqrt(6)
A_HAND = np.zeros((6, 6))
for u, i, v in [(0, 0, 1 / S2), (0, 1, 1 / S6), (1, 1, 1 / S3), (2, 1, 1 / S6), (2, 2, 1 / S2)]:
    A_HAND[u, 3 + i] = A_HAND[3 + i, u] = v
