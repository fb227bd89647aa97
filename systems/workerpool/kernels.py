"""The worker-pool kernels: the reference definitions of ``systems/workerpool/README.md``.

``spin`` holds the GIL throughout (pure integer arithmetic); ``hash_chain`` releases it while
hashing blocks larger than 2047 bytes. Both return a lowercase hex string, and every
implementation (Python and Go) returns exactly the outputs listed in ``kernel_vectors.json``.
"""

from __future__ import annotations

import hashlib
from typing import Final

KERNELS: Final = ("spin", "hash")
MAX_SEED: Final = 2**64 - 1
MAX_ROUNDS: Final = 100_000_000
MAX_SIZE: Final = 64 * 1024 * 1024

_M: Final = 2**64 - 1


def spin(seed: int, rounds: int) -> str:
    """xorshift64 ``rounds`` times from ``seed`` mixed with the golden-ratio constant."""
    x = (seed ^ 0x9E3779B97F4A7C15) & _M
    for _ in range(rounds):
        x ^= (x << 13) & _M
        x ^= x >> 7
        x ^= (x << 17) & _M
    return f"{x:016x}"


def hash_chain(seed: int, rounds: int, size: int) -> str:
    """SHA-256 chained ``rounds`` times over the previous digest and a ``size``-byte block.

    The block is ``seed`` as 8 little-endian bytes repeated; no rounds give the empty string.
    """
    block = seed.to_bytes(8, "little") * (size // 8)
    digest = b""
    for _ in range(rounds):
        h = hashlib.sha256()
        h.update(digest)
        h.update(block)
        digest = h.digest()
    return digest.hex()


def _require_int(field: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass, but True as a round count is a caller's mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{field} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{field} must be in {low}..{high}, not {value}")


def check(kernel: str, rounds: int, size: int, seed: int = 0) -> None:
    """Raise ValueError naming the first invalid field of a task; ``size`` is ignored by spin."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, not {kernel!r}")
    _require_int("seed", seed, 0, MAX_SEED)
    _require_int("rounds", rounds, 0, MAX_ROUNDS)
    if kernel == "hash":
        _require_int("size", size, 8, MAX_SIZE)
        if size % 8:
            raise ValueError(f"size must be a multiple of 8, not {size}")


def run_task(kernel: str, seed: int, rounds: int, size: int) -> str:
    """Check one task and run its kernel; a top-level function, so process pools can pickle it."""
    check(kernel, rounds, size, seed)
    if kernel == "spin":
        return spin(seed, rounds)
    return hash_chain(seed, rounds, size)
