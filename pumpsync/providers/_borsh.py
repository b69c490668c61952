"""The pump.fun program's events: a declarative layout table and a tolerant Borsh decoder.

One entry per event, fields in order, names and types as in the program's IDL
(``pump-fun/pump-public-docs``, ``idl/pump.json``). Layouts only ever grow at the end, so the
decoder reads the fields it knows and ignores trailing bytes (the next upgrade), and an event
shorter than its layout (an older program) is decoded as far as whole fields go, the missing
ones absent. Each layout is compiled once into a plan: runs of fixed-size fields become one
``struct`` unpack; strings and vectors are read between runs.

This module shares no code with the simulator's encoder, on purpose: a symmetric bug in a
shared codec would pass every round-trip test.
"""

from __future__ import annotations

import binascii
import hashlib
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# Anchor prefixes the event data of a self-CPI ("emit_cpi!") instruction with this tag.
EVENT_CPI_TAG = bytes.fromhex("e445a52e51cb9a1d")

# Field types: IDL primitives, or a vector of a struct given as its own field list.
Field = tuple[str, "str | Vec"]


@dataclass(frozen=True)
class Vec:
    """``vec<struct>``: a u32 count, then the items."""

    item: tuple[Field, ...]


@dataclass(frozen=True)
class Layout:
    name: str  # the IDL's event name
    discriminator: str  # hex: sha256("event:<name>")[:8]
    fields: tuple[Field, ...]
    required: int  # fewer whole fields than this is no event at all (normalization needs them)


_SHAREHOLDER = Vec((("address", "pubkey"), ("share_bps", "u16")))

# IDL of pump-fun/pump-public-docs at 1b822158 (May 2026); the event table of free-sources.md agrees.
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "CreateEvent",
        "1b72a94ddeeb6376",
        (
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
        ),
        required=4,  # up to the mint
    ),
    Layout(
        "TradeEvent",
        "bddb7fd34ee661ee",
        (
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
            ("shareholders", _SHAREHOLDER),
            ("quote_mint", "pubkey"),
            ("quote_amount", "u64"),
            ("virtual_quote_reserves", "u64"),
            ("real_quote_reserves", "u64"),
        ),
        required=5,  # up to the user: mint, amounts, side
    ),
    Layout(
        "CompleteEvent",
        "5f72619cd42e9808",
        (
            ("user", "pubkey"),
            ("mint", "pubkey"),
            ("bonding_curve", "pubkey"),
            ("timestamp", "i64"),
            ("quote_mint", "pubkey"),
        ),
        required=2,
    ),
    Layout(
        "CompletePumpAmmMigrationEvent",
        "bde95db95c94ea94",
        (
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
        required=2,
    ),
)

# The IDL's other events: real, expected in the logs, not turned into pumpsync events. They are
# skipped quietly; only discriminators that are in no IDL count as "unknown_event".
OTHER_EVENTS = (
    "AdminSetCreatorEvent",
    "AdminSetIdlAuthorityEvent",
    "AdminUpdateTokenIncentivesEvent",
    "ClaimCashbackEvent",
    "ClaimTokenIncentivesEvent",
    "CloseUserVolumeAccumulatorEvent",
    "CollectCreatorFeeEvent",
    "DistributeCreatorFeesEvent",
    "ExtendAccountEvent",
    "InitUserVolumeAccumulatorEvent",
    "MigrateBondingCurveCreatorEvent",
    "MinimumDistributableFeeEvent",
    "ReservedFeeRecipientsEvent",
    "SetCreatorEvent",
    "SetMetaplexCreatorEvent",
    "SetParamsEvent",
    "SyncUserVolumeAccumulatorEvent",
    "UpdateGlobalAuthorityEvent",
    "UpdateMayhemVirtualParamsEvent",
)


def discriminator(name: str) -> bytes:
    """Anchor's event discriminator: the first 8 bytes of sha256("event:<Name>")."""
    return hashlib.sha256(f"event:{name}".encode()).digest()[:8]


_IGNORED = frozenset(discriminator(name) for name in OTHER_EVENTS)

# ---------------------------------------------------------------- base58

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]  # two digits per divmod: half the big-int divisions
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
# Keys repeat (quote mint, token program, fee recipients, a coin's mint and creator across its trades):
# a bounded memo turns most encodes into one dict lookup.
_MEMO: dict[bytes, str] = {}
_MEMO_LIMIT = 65_536


def b58encode(raw: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana shows public keys and signatures."""
    n = int.from_bytes(raw, "big")
    out: list[str] = []
    while n >= 3364:
        n, rest = divmod(n, 3364)
        out.append(_PAIRS[rest])
    head = (_PAIRS[n] if n >= 58 else _ALPHABET[n]) if n else ""
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + head + "".join(reversed(out))


def pubkey(raw: bytes) -> str:
    text = _MEMO.get(raw)
    if text is None:
        text = b58encode(raw)
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()  # crude but bounded; refilling costs one encode per key
        _MEMO[raw] = text
    return text


def b58decode(text: str) -> bytes:
    """Base58 to bytes; ``ValueError`` on a character outside the alphabet."""
    n = 0
    index = _INDEX
    try:
        for char in text:
            n = n * 58 + index[char]
    except KeyError:
        raise ValueError("not base58") from None
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


# ---------------------------------------------------------------- compiled plans

_FIXED = {"u8": "B", "bool": "B", "u16": "H", "u32": "I", "u64": "Q", "i64": "q", "pubkey": "32s"}
_U32 = struct.Struct("<I")


class _Run(NamedTuple):
    """Consecutive fixed-size fields, read with one unpack."""

    whole: struct.Struct
    names: tuple[str, ...]
    singles: tuple[struct.Struct, ...]  # per field, for a short (older) event that ends inside the run
    pubkeys: tuple[int, ...]
    bools: tuple[int, ...]


class _String(NamedTuple):
    name: str


class _Vec(NamedTuple):
    name: str
    item: _Run


_Step = _Run | _String | _Vec


def _run(fields: Sequence[Field]) -> _Run:
    kinds = [kind for _, kind in fields]
    for kind in kinds:
        if not isinstance(kind, str) or kind not in _FIXED:
            raise ValueError(f"not a fixed-size field type: {kind!r}")
    codes = [_FIXED[kind] for kind in kinds if isinstance(kind, str)]
    return _Run(
        struct.Struct("<" + "".join(codes)),
        tuple(name for name, _ in fields),
        tuple(struct.Struct("<" + code) for code in codes),
        tuple(i for i, kind in enumerate(kinds) if kind == "pubkey"),
        tuple(i for i, kind in enumerate(kinds) if kind == "bool"),
    )


def compile_layout(fields: Sequence[Field]) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    pending: list[Field] = []
    for name, kind in fields:
        if kind == "string" or isinstance(kind, Vec):
            if pending:
                steps.append(_run(pending))
                pending = []
            steps.append(_Vec(name, _run(kind.item)) if isinstance(kind, Vec) else _String(name))
        else:
            pending.append((name, kind))
    if pending:
        steps.append(_run(pending))
    return tuple(steps)


class Undecodable(Exception):
    """The bytes break the layout (a bool that is neither 0 nor 1, a string that is not UTF-8)."""


def _convert(run: _Run, values: list[Any], count: int) -> None:
    """Pubkeys to base58 and bools to bool, in place, for the first ``count`` values."""
    for i in run.pubkeys:
        if i < count:
            values[i] = pubkey(values[i])
    for i in run.bools:
        if i < count:
            flag = values[i]
            if flag > 1:
                raise Undecodable("bool")
            values[i] = flag == 1


def _read(steps: tuple[_Step, ...], data: bytes, offset: int, out: dict[str, Any]) -> int:
    """Decode into ``out`` as far as whole fields go; return how many fields were read."""
    size = len(data)
    read = 0
    for step in steps:
        if type(step) is _Run:
            if offset + step.whole.size <= size:
                values = list(step.whole.unpack_from(data, offset))
                offset += step.whole.size
                _convert(step, values, len(values))
                out.update(zip(step.names, values, strict=True))
                read += len(values)
                continue
            # A shorter (older) event ends inside this run: the fields that fit, one by one.
            values = []
            for single in step.singles:
                if offset + single.size > size:
                    break
                values.append(single.unpack_from(data, offset)[0])
                offset += single.size
            _convert(step, values, len(values))
            out.update(zip(step.names, values, strict=False))
            return read + len(values)
        if offset + 4 > size:
            return read
        (length,) = _U32.unpack_from(data, offset)
        if type(step) is _String:
            if offset + 4 + length > size:
                return read
            try:
                out[step.name] = data[offset + 4 : offset + 4 + length].decode("utf-8")
            except UnicodeDecodeError:
                raise Undecodable("utf-8") from None
            offset += 4 + length
        else:
            assert type(step) is _Vec
            item = step.item
            if offset + 4 + length * item.whole.size > size:
                return read
            offset += 4
            items = []
            for _ in range(length):
                values = list(item.whole.unpack_from(data, offset))
                offset += item.whole.size
                _convert(item, values, len(values))
                items.append(dict(zip(item.names, values, strict=True)))
            out[step.name] = items
        read += 1
    return read


class Decoded(NamedTuple):
    event: str  # the IDL's event name
    fields: dict[str, Any]  # IDL field names -> exact values (ints, base58 strings, bools, str, lists)


# Why a ``Program data:`` payload gave no event (bounded: these become metric labels).
UNKNOWN_EVENT = "unknown_event"
UNDECODABLE = "undecodable"


class _Compiled(NamedTuple):
    name: str
    steps: tuple[_Step, ...]
    required: int


_PLANS: dict[bytes, _Compiled] = {}
for _layout in LAYOUTS:
    _disc = bytes.fromhex(_layout.discriminator)
    if _disc != discriminator(_layout.name):  # the table's own consistency, checked at import
        raise AssertionError(f"discriminator of {_layout.name}")
    _PLANS[_disc] = _Compiled(_layout.name, compile_layout(_layout.fields), _layout.required)


def decode_event(data: bytes) -> Decoded | str | None:
    """One event (discriminator + Borsh fields): the decoded event, ``None`` for an IDL event
    pumpsync does not map, or a reason (``unknown_event``, ``undecodable``)."""
    plan = _PLANS.get(data[:8])
    if plan is None:
        if len(data) < 8:
            return UNDECODABLE  # not even a discriminator
        return None if data[:8] in _IGNORED else UNKNOWN_EVENT
    fields: dict[str, Any] = {}
    try:
        read = _read(plan.steps, data, 8, fields)
    except (Undecodable, struct.error):
        return UNDECODABLE
    if read < plan.required:
        return UNDECODABLE
    return Decoded(plan.name, fields)


if sys.version_info >= (3, 11):

    def _b64decode(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)  # not silently skipping stray characters

else:  # pragma: no cover - Python 3.10
    _b64decode = binascii.a2b_base64


def decode_program_data(text: str) -> Decoded | str | None:
    """The base64 of a ``Program data:`` log line (the text after the prefix)."""
    try:
        data = _b64decode(text)
    except (binascii.Error, ValueError):
        return UNDECODABLE
    return decode_event(data)


def decode_cpi_data(raw: bytes) -> Decoded | str | None:
    """A self-CPI instruction's data: the event tag, then an event; ``None`` if not an event CPI."""
    if raw[:8] != EVENT_CPI_TAG:
        return None
    return decode_event(raw[8:])


__all__ = [
    "EVENT_CPI_TAG",
    "LAYOUTS",
    "OTHER_EVENTS",
    "UNDECODABLE",
    "UNKNOWN_EVENT",
    "Decoded",
    "Layout",
    "Vec",
    "b58decode",
    "b58encode",
    "decode_cpi_data",
    "decode_event",
    "decode_program_data",
    "discriminator",
    "pubkey",
]
