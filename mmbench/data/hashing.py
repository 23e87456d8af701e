"""Seeded integer hashing: per-(user, item) pseudo-random values that do not depend on batching or device.

The lowest layer, so every layer may use it: the Random model's scores and the evaluator's tie order.
"""

from __future__ import annotations

import torch

_MASK = (1 << 63) - 1


def mix64(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit integer mixer (SplitMix64 finaliser, arithmetic wraps in int64); non-negative output."""
    x = x ^ (x >> 31)
    x = x * -4658895280553007687  # 0xbf58476d1ce4e5b9 as signed int64
    x = x ^ (x >> 27)
    x = x * -7723592293110705685  # 0x94d049bb133111eb as signed int64
    x = x ^ (x >> 31)
    return x & _MASK
