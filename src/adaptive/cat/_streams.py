"""Per-session random streams, vectorized (DESIGN.md convention 9).

Every session has a 64-bit key derived from its seed with
:class:`numpy.random.SeedSequence`. A random number is a pure function of
``(key, step, purpose, j)`` computed with the SplitMix64 finalizer
(Steele, Lea & Flood 2014) in numpy ``uint64`` arithmetic, so a batch of
10,000 sessions draws in one array operation, and a session draws the same
numbers alone, in any batch, in any chunk and after a JSON round trip.
"""

from __future__ import annotations

import numpy as np

__all__ = ["session_key", "batch_keys", "uniforms", "PURPOSE"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: what a draw is for; each purpose has its own stream
PURPOSE = {"start": 1, "pretest_positions": 2, "pretest_item": 3, "randomesque": 4, "sympson_hetter": 5,
           "random_rule": 6, "response": 7, "start_items": 8}


def _mix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def session_key(seed) -> np.uint64:
    """The key of a session started with ``seed`` (an int, or None for fresh entropy)."""
    return np.random.SeedSequence(seed).generate_state(1, np.uint64)[0]


def batch_keys(seed, n: int) -> np.ndarray:
    """Keys of ``n`` sessions: simulee ``k`` of ``simulate_cat(seed=s)`` has ``batch_keys(s, n)[k]``.

    The first key equals :func:`session_key` of the same seed.
    """
    if isinstance(seed, (list, tuple, np.ndarray)):
        seeds = list(np.asarray(seed).ravel())
        if len(seeds) != n:
            raise ValueError(f"{len(seeds)} seeds given for {n} sessions")
        return np.array([session_key(int(s)) for s in seeds], dtype=np.uint64)
    return np.random.SeedSequence(seed).generate_state(n, np.uint64)


def uniforms(keys, step, purpose: str, width: int | None = None) -> np.ndarray:
    """Uniform draws in [0, 1): shape ``(N,)``, or ``(N, width)`` with ``width``.

    Parameters
    ----------
    keys : uint64 array ``(N,)``
    step : int or int array ``(N,)`` -- the session's position in its test (or any counter)
    purpose : key of :data:`PURPOSE`
    """
    keys = np.asarray(keys, dtype=np.uint64)
    step = np.broadcast_to(np.asarray(step, dtype=np.uint64), keys.shape)
    salt = np.asarray(PURPOSE[purpose] * 0x100000001B3, dtype=np.uint64)
    x = _mix(keys ^ _mix(step * np.uint64(0x10001) + salt))
    if width is not None:
        x = _mix(x[:, None] + np.arange(1, width + 1, dtype=np.uint64)[None, :] * _GOLDEN)
    else:
        x = _mix(x)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
