"""Four users' ratings of five items, small enough to compute the Surprise models by hand."""

from __future__ import annotations

from tests.helpers.data import make_interactions

# u0: i0=5 i1=3 i2=4 | u1: i0=4 i1=3 i3=5 | u2: i0=1 i2=2 i3=2 | u3: i1=4 i3=1 | item 4: no ratings
PAIRS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 3), (2, 0), (2, 2), (2, 3), (3, 1), (3, 3)]
RATINGS = [5, 3, 4, 4, 3, 5, 1, 2, 2, 4, 1]
TRAIN = make_interactions(PAIRS, 4, 5, RATINGS)
MU = 34 / 11
