"""Solana program-derived addresses (PDAs), as ``Pubkey::find_program_address`` computes them.

A PDA is ``sha256(seeds || bump || program_id || "ProgramDerivedAddress")`` for the highest bump
(255 down) whose hash is *not* a point of the ed25519 curve (so no private key can sign for it).
Used to tell a PumpSwap pool that a pump.fun graduation created from a look-alike: the graduation's
pool is the PDA of index 0 whose creator is the pump program's pool authority for that mint
(``migrate``'s accounts in ``idl/pump.json``, pump-fun/pump-public-docs 1b82215).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from pumpsync.providers._borsh import b58decode, pubkey

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_MARKER = b"ProgramDerivedAddress"

PUMP_PROGRAM = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMPSWAP_PROGRAM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"


def on_curve(point: bytes) -> bool:
    """Whether 32 bytes decompress to an ed25519 point (curve25519-dalek's ``decompress().is_some()``:
    the sign bit ignored, y reduced mod p, x² = (y² - 1) / (d·y² + 1) must be a square)."""
    y = int.from_bytes(point, "little") & ((1 << 255) - 1)
    y2 = y * y % _P
    u = (y2 - 1) % _P
    v = (_D * y2 + 1) % _P  # never 0: -1/d is not a square mod p
    x2 = u * pow(v, _P - 2, _P) % _P
    return x2 == 0 or pow(x2, (_P - 1) // 2, _P) == 1


def find_program_address(seeds: tuple[bytes, ...], program: bytes) -> tuple[bytes, int]:
    """The PDA of ``seeds`` under ``program`` (32 raw bytes) and its bump."""
    joined = b"".join(seeds)
    for bump in range(255, -1, -1):
        digest = hashlib.sha256(joined + bytes((bump,)) + program + _MARKER).digest()
        if not on_curve(digest):
            return digest, bump
    raise ValueError("no program address for these seeds")  # about 2**-256: never in practice


@lru_cache(maxsize=4096)  # bounded: a pool is checked once when learned; hot mints stay cached
def graduation_pool(mint: str, quote_mint: str) -> str:
    """The PumpSwap pool a pump.fun graduation of ``mint`` creates (index 0, the pump program's
    ``["pool-authority", mint]`` PDA as creator, quoted in ``quote_mint``): base58."""
    mint_raw, quote_raw = b58decode(mint), b58decode(quote_mint)
    authority, _ = find_program_address((b"pool-authority", mint_raw), b58decode(PUMP_PROGRAM))
    pool, _ = find_program_address(
        (b"pool", (0).to_bytes(2, "little"), authority, mint_raw, quote_raw), b58decode(PUMPSWAP_PROGRAM)
    )
    return pubkey(pool)


def pool_authority(mint: str) -> str:
    """The pump program's pool authority for ``mint``: the creator of its graduation pool."""
    authority, _ = find_program_address((b"pool-authority", b58decode(mint)), b58decode(PUMP_PROGRAM))
    return pubkey(authority)


__all__ = ["find_program_address", "graduation_pool", "on_curve", "pool_authority"]
