"""Solana-looking identifiers (base58 addresses, signatures, IPFS CIDs) from a seeded RNG."""

from __future__ import annotations

import random

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# First characters that keep a fixed-length string inside the byte range it encodes
# (a 44-char address must decode to 32 bytes, an 88-char signature to 64 bytes).
_ADDRESS_HEAD = ALPHABET[1:17]
_SIGNATURE_HEAD = ALPHABET[1:5]


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58, as Solana uses for keys and signatures."""
    value = int.from_bytes(data, "big")
    out: list[str] = []
    while value:
        value, rem = divmod(value, 58)
        out.append(ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def _chars(rng: random.Random, n: int) -> str:
    return "".join(rng.choices(ALPHABET, k=n))


def wallet(rng: random.Random) -> str:
    """A 32-byte public key (43-44 base58 characters)."""
    return b58encode(bytes([rng.randrange(1, 256)]) + rng.randbytes(31))


def pump_mint(rng: random.Random) -> str:
    """A 44-character vanity mint ending in ``pump``, like Pump.fun's."""
    return rng.choice(_ADDRESS_HEAD) + _chars(rng, 39) + "pump"


def signature(rng: random.Random) -> str:
    """An 88-character transaction signature."""
    return rng.choice(_SIGNATURE_HEAD) + _chars(rng, 87)


def ipfs_cid(rng: random.Random) -> str:
    """A CIDv0 (``Qm`` + 44 base58 characters)."""
    return "Qm" + _chars(rng, 44)


class CounterSuffix:
    """Fast fixed-width base58 rendering of a counter (for unique benchmark signatures)."""

    _BASE = 58 * 58

    def __init__(self) -> None:
        self._pairs = [a + b for a in ALPHABET for b in ALPHABET]

    def render(self, n: int) -> str:
        """Eight base58 characters that differ for every ``n`` below 58**8."""
        pairs, base = self._pairs, self._BASE
        a, n = n % base, n // base
        b, n = n % base, n // base
        c, d = n % base, (n // base) % base
        return pairs[d] + pairs[c] + pairs[b] + pairs[a]
