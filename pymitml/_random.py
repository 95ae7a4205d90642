"""Normalising ``seed`` arguments once, and giving every chain its own stream."""

from __future__ import annotations

import numpy as np

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """Turn a user's ``seed`` into a :class:`numpy.random.SeedSequence`.

    An ``int`` or ``None`` gives a fresh sequence (``None``: from OS entropy); a ``Generator``
    contributes 128 bits drawn from it, so passing the same generator state twice reproduces.
    """
    if seed is None or isinstance(seed, (int, np.integer)):
        if seed is not None and int(seed) < 0:
            raise ValueError(f"`seed` must be a non-negative integer; got {seed}.")
        return np.random.SeedSequence(None if seed is None else int(seed))
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(seed.integers(0, 2**63 - 1, size=2).tolist())
    raise TypeError(
        f"`seed` must be an int, a numpy Generator, a SeedSequence or None; got {type(seed).__name__}."
    )


def spawn_seeds(seed: SeedLike, n: int) -> list[int]:
    """``n`` independent 63-bit integer seeds for numba kernels (one per chain)."""
    ss = as_seed_sequence(seed)
    return [int(c.generate_state(2, dtype=np.uint64)[0] >> np.uint64(1)) for c in ss.spawn(n)]
