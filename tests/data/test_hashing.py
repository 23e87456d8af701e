"""mix64 against the SplitMix64 finaliser written with Python integers, in the int64 arithmetic it documents."""

from __future__ import annotations

import torch

from mmbench.data.hashing import mix64


def signed64(z: int) -> int:
    z &= (1 << 64) - 1
    return z - (1 << 64) if z >> 63 else z


def finaliser_int64(z: int) -> int:
    """SplitMix64's finaliser (Vigna, splitmix64.c) with products wrapping in signed 64-bit integers and
    arithmetic right shifts (as on int64 tensors), then the sign bit cleared."""
    z = signed64(z)
    z = signed64((z ^ (z >> 31)) * 0xBF58476D1CE4E5B9)
    z = signed64((z ^ (z >> 27)) * 0x94D049BB133111EB)
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def test_mix64_matches_the_reference_finaliser():
    xs = [0, 1, 2, 12345, 1_000_003 * 7 + 11, (1 << 40) + 17, (1 << 62) - 1, -5]
    got = mix64(torch.tensor(xs, dtype=torch.int64)).tolist()
    assert got == [finaliser_int64(x) for x in xs]
    assert min(got) >= 0 and len(set(got)) == len(xs)
