"""Borsh encoding of the pump.fun program's Anchor events, and base58, for the simulated node.

Written from ``free-sources.md`` section 1 for the simulator alone: it must share no code
with the client's decoder (``pumpsync/providers``), or a symmetric bug would pass every test.
Layouts are tables (one entry per event, fields in order); ``legacy`` is a prefix of the
current layout (the program's April 2025 versions), ``extended`` appends fields (a future
upgrade; TradeEvent's are the ones the 2026-09-15 upgrade added).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pumpsync.simulator._ids import ALPHABET, b58encode

__all__ = [
    "CPI_EVENT_TAG",
    "LAYOUTS",
    "LayoutName",
    "b58decode",
    "b58encode",
    "discriminator",
    "encode_event",
    "layout_fields",
]

# current: October 2026; may2026: before the 2026-09/10 appendices (the captured mainnet lines);
# legacy: before the 2025-2026 upgrades; extended: a next upgrade's longer events.
LayoutName = Literal["current", "may2026", "legacy", "extended"]
LAYOUTS: tuple[LayoutName, ...] = ("current", "may2026", "legacy", "extended")

# Anchor's emit_cpi! tag: the self-CPI's instruction data is this, then the event.
CPI_EVENT_TAG = bytes.fromhex("e445a52e51cb9a1d")

_INDEX = {c: i for i, c in enumerate(ALPHABET)}

Field = tuple[str, str]

# The common end of PumpSwap's Buy and SellEvent (fees, then what 2026-09/10 appended).
_SWAP_END: tuple[tuple[str, str], ...] = (
    ("cashback_fee_basis_points", "u64"),
    ("cashback", "u64"),
    ("buyback_fee_basis_points", "u64"),
    ("buyback_fee", "u64"),
    ("virtual_quote_reserves", "i128"),
    ("can_boost", "bool"),
    ("base_supply", "u64"),
    ("holder_rewards_bps", "u64"),
    ("holder_rewards", "u64"),
    ("creator_fee_unclaimed", "u64"),
)

# IDL of pump-fun/pump-public-docs (commit 3c6721a, May 2026), as listed in free-sources.md.
CURRENT: dict[str, tuple[Field, ...]] = {
    "CreateEvent": (
        ("name", "string"),
        ("symbol", "string"),
        ("uri", "string"),
        ("mint", "pubkey"),
        ("bonding_curve", "pubkey"),
        ("user", "pubkey"),
        ("creator", "pubkey"),
        ("timestamp", "i64"),
        ("virtual_token_reserves", "u64"),
        ("virtual_sol_reserves", "u64"),
        ("real_token_reserves", "u64"),
        ("token_total_supply", "u64"),
        ("token_program", "pubkey"),
        ("is_mayhem_mode", "bool"),
        ("is_cashback_enabled", "bool"),
        ("quote_mint", "pubkey"),
        ("virtual_quote_reserves", "u64"),
        # 2026-09-15 create_v2 (holder-reward coins), 2026-10-08 (coins quoted in a pump coin)
        ("creator_fee_bps", "u64"),
        ("is_holder_reward", "bool"),
        ("depth", "u8"),
    ),
    "TradeEvent": (
        ("mint", "pubkey"),
        ("sol_amount", "u64"),
        ("token_amount", "u64"),
        ("is_buy", "bool"),
        ("user", "pubkey"),
        ("timestamp", "i64"),
        ("virtual_sol_reserves", "u64"),
        ("virtual_token_reserves", "u64"),
        ("real_sol_reserves", "u64"),
        ("real_token_reserves", "u64"),
        ("fee_recipient", "pubkey"),
        ("fee_basis_points", "u64"),
        ("fee", "u64"),
        ("creator", "pubkey"),
        ("creator_fee_basis_points", "u64"),
        ("creator_fee", "u64"),
        ("track_volume", "bool"),
        ("total_unclaimed_tokens", "u64"),
        ("total_claimed_tokens", "u64"),
        ("current_sol_volume", "u64"),
        ("last_update_timestamp", "i64"),
        ("ix_name", "string"),
        ("mayhem_mode", "bool"),
        ("cashback_fee_basis_points", "u64"),
        ("cashback", "u64"),
        ("buyback_fee_basis_points", "u64"),
        ("buyback_fee", "u64"),
        ("shareholders", "shareholders"),
        ("quote_mint", "pubkey"),
        ("quote_amount", "u64"),
        ("virtual_quote_reserves", "u64"),
        ("real_quote_reserves", "u64"),
        ("holder_rewards_bps", "u64"),  # 2026-09-15
        ("holder_rewards", "u64"),
        ("creator_fee_unclaimed", "u64"),  # 2026-10-08 (trade v3)
    ),
    # 2026-10-08: the part of a curve-completing v3 buy the future pool filled (224 bytes; the
    # offsets of shared/reference/onchain-2026.md section 1).
    "PostCompleteBuyEvent": (
        ("user", "pubkey"),
        ("mint", "pubkey"),
        ("bonding_curve", "pubkey"),
        ("quote_mint", "pubkey"),
        ("timestamp", "i64"),
        *(
            (name, "u64")
            for name in [
                "base_out",
                "quote_in",
                "fee_basis_points",
                "fee",
                "creator_fee_basis_points",
                "creator_fee",
                "buyback_fee",
                "pool_base_reserves_before",
                "pool_quote_reserves_before",
                "pool_base_reserves_after",
                "pool_quote_reserves_after",
            ]
        ),
    ),
    # Fee payouts (sweeps): 145 and 177 bytes.
    "SweepBondingCurveFeeEvent": (
        ("timestamp", "i64"),
        *((name, "pubkey") for name in ("mint", "bonding_curve", "quote_mint", "recipient")),
        ("amount", "u64"),
        ("bucket", "u8"),
    ),
    "SweepPoolFeeEvent": (
        ("timestamp", "i64"),
        *((name, "pubkey") for name in ("pool", "base_mint", "quote_mint", "recipient", "payer")),
        ("amount", "u64"),
        ("bucket", "u8"),
    ),
    "CompleteEvent": (
        ("user", "pubkey"),
        ("mint", "pubkey"),
        ("bonding_curve", "pubkey"),
        ("timestamp", "i64"),
        ("quote_mint", "pubkey"),
    ),
    "CompletePumpAmmMigrationEvent": (
        ("user", "pubkey"),
        ("mint", "pubkey"),
        ("mint_amount", "u64"),
        ("sol_amount", "u64"),
        ("pool_migration_fee", "u64"),
        ("bonding_curve", "pubkey"),
        ("timestamp", "i64"),
        ("pool", "pubkey"),
        ("quote_mint", "pubkey"),
    ),
    # PumpSwap (pump_amm): IDL of pump-public-docs 1b822158 plus the fields appended 2026-09/10
    # (shared/reference/onchain-2026.md section 2). Written out here, apart from the decoder's table.
    "BuyEvent": (
        ("timestamp", "i64"),
        *(
            (name, "u64")
            for name in [
                "base_amount_out",
                "max_quote_amount_in",
                "user_base_token_reserves",
                "user_quote_token_reserves",
                "pool_base_token_reserves",
                "pool_quote_token_reserves",
                "quote_amount_in",
                "lp_fee_basis_points",
                "lp_fee",
                "protocol_fee_basis_points",
                "protocol_fee",
                "quote_amount_in_with_lp_fee",
                "user_quote_amount_in",
            ]
        ),
        *((name, "pubkey") for name in ("pool", "user", "user_base_token_account", "user_quote_token_account")),
        ("protocol_fee_recipient", "pubkey"),
        ("protocol_fee_recipient_token_account", "pubkey"),
        ("coin_creator", "pubkey"),
        ("coin_creator_fee_basis_points", "u64"),
        ("coin_creator_fee", "u64"),
        ("track_volume", "bool"),
        ("total_unclaimed_tokens", "u64"),
        ("total_claimed_tokens", "u64"),
        ("current_sol_volume", "u64"),
        ("last_update_timestamp", "i64"),
        ("min_base_amount_out", "u64"),
        ("ix_name", "string"),
        *_SWAP_END,
    ),
    "SellEvent": (
        ("timestamp", "i64"),
        *(
            (name, "u64")
            for name in [
                "base_amount_in",
                "min_quote_amount_out",
                "user_base_token_reserves",
                "user_quote_token_reserves",
                "pool_base_token_reserves",
                "pool_quote_token_reserves",
                "quote_amount_out",
                "lp_fee_basis_points",
                "lp_fee",
                "protocol_fee_basis_points",
                "protocol_fee",
                "quote_amount_out_without_lp_fee",
                "user_quote_amount_out",
            ]
        ),
        *((name, "pubkey") for name in ("pool", "user", "user_base_token_account", "user_quote_token_account")),
        ("protocol_fee_recipient", "pubkey"),
        ("protocol_fee_recipient_token_account", "pubkey"),
        ("coin_creator", "pubkey"),
        ("coin_creator_fee_basis_points", "u64"),
        ("coin_creator_fee", "u64"),
        *_SWAP_END,
    ),
    # Not a feed event (a client must count it as unknown): emitted by extend_account.
    "ExtendAccountEvent": (
        ("account", "pubkey"),
        ("user", "pubkey"),
        ("current_size", "u64"),
        ("new_size", "u64"),
        ("timestamp", "i64"),
    ),
}

# Fields each event had before the 2025-2026 upgrades appended the rest.
LEGACY_LENGTH = {"CreateEvent": 8, "TradeEvent": 10, "CompleteEvent": 4, "CompletePumpAmmMigrationEvent": 8}

# Fields a next upgrade appends (values default to zero).
EXTENSION: dict[str, tuple[Field, ...]] = {
    "CreateEvent": (("next_flag", "bool"), ("next_bps", "u64")),
    "TradeEvent": (("next_bps", "u64"), ("next_amount", "u64")),
    "CompleteEvent": (("next_vault", "pubkey"),),
    "CompletePumpAmmMigrationEvent": (("next_amount", "u64"),),
}


def discriminator(name: str) -> bytes:
    """Anchor's event discriminator: the first 8 bytes of sha256("event:<Name>")."""
    return hashlib.sha256(f"event:{name}".encode()).digest()[:8]


# Fields the 2026-09-15 and 2026-10-08 upgrades appended (the May 2026 layout ends before them).
OCTOBER_2026 = {"CreateEvent": 3, "TradeEvent": 3}


def layout_fields(name: str, layout: LayoutName = "current") -> tuple[Field, ...]:
    fields = CURRENT[name]
    if layout == "may2026":
        return fields[: len(fields) - OCTOBER_2026.get(name, 0)]
    if layout == "legacy":
        return fields[: LEGACY_LENGTH.get(name, len(fields))]
    if layout == "extended":
        return fields + EXTENSION.get(name, ())
    return fields


def b58decode(text: str) -> bytes:
    """Bitcoin-alphabet base58 to bytes (leading '1's are zero bytes)."""
    value = 0
    for char in text:
        try:
            value = value * 58 + _INDEX[char]
        except KeyError:
            raise ValueError(f"not base58: {char!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return b"\0" * zeros + body


def pubkey_bytes(key: str) -> bytes:
    raw = b58decode(key)
    if len(raw) != 32:
        raise ValueError(f"a public key is 32 bytes, {key!r} is {len(raw)}")
    return raw


_INTS = {"u8": "<B", "u16": "<H", "u32": "<I", "u64": "<Q", "i64": "<q"}


def _put(out: bytearray, kind: str, value: Any) -> None:
    if kind in _INTS:
        out += struct.pack(_INTS[kind], value)
    elif kind == "i128":
        out += int(value).to_bytes(16, "little", signed=True)
    elif kind == "bool":
        out.append(1 if value else 0)
    elif kind == "pubkey":
        out += pubkey_bytes(value)
    elif kind == "string":
        data = value.encode()
        out += struct.pack("<I", len(data)) + data
    elif kind == "shareholders":  # vec<{address pubkey, share_bps u16}>
        items: Sequence[tuple[str, int]] = value
        out += struct.pack("<I", len(items))
        for address, share_bps in items:
            out += pubkey_bytes(address) + struct.pack("<H", share_bps)
    else:
        raise ValueError(f"unknown Borsh type {kind!r}")


_ZERO: dict[str, Any] = {"bool": False, "pubkey": "11111111111111111111111111111111", "string": "", "shareholders": ()}


def encode_event(name: str, values: Mapping[str, Any], layout: LayoutName = "current") -> bytes:
    """Discriminator + Borsh body. Extension fields missing from ``values`` are zero."""
    out = bytearray(discriminator(name))
    extension = {f for f, _ in EXTENSION.get(name, ())}
    for field, kind in layout_fields(name, layout):
        if field in values:
            value = values[field]
        elif field in extension:
            value = _ZERO.get(kind, 0)
        else:
            raise KeyError(f"{name}.{field} has no value")
        _put(out, kind, value)
    return bytes(out)


def derived_key(*parts: str) -> str:
    """A stable 32-byte public key for an account the market does not model (PDAs, pools)."""
    return b58encode(hashlib.sha256("|".join(parts).encode()).digest())


def derived_signature(*parts: str) -> str:
    """A stable 64-byte transaction signature."""
    return b58encode(hashlib.sha512("|".join(parts).encode()).digest())
