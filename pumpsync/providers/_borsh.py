"""The pump.fun program's and PumpSwap's events: a tolerant Borsh decoder of the layout table
(``_pump_layouts``). Layouts only ever grow at the end, so the
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
from typing import Any, NamedTuple

from pumpsync.providers._pump_layouts import LAYOUTS, OTHER_AMM_EVENTS, OTHER_EVENTS, Field, Layout, Vec

# Anchor prefixes the event data of a self-CPI ("emit_cpi!") instruction with this tag.
EVENT_CPI_TAG = bytes.fromhex("e445a52e51cb9a1d")


def discriminator(name: str) -> bytes:
    """Anchor's event discriminator: the first 8 bytes of sha256("event:<Name>")."""
    return hashlib.sha256(f"event:{name}".encode()).digest()[:8]


_IGNORED = {
    "pump": frozenset(discriminator(name) for name in OTHER_EVENTS),
    "pump_amm": frozenset(discriminator(name) for name in OTHER_AMM_EVENTS),
}

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

_FIXED = {
    "u8": "B",
    "bool": "B",
    "u16": "H",
    "u32": "I",
    "u64": "Q",
    "i64": "q",
    "pubkey": "32s",
    "i128": "16s",  # struct has no 128-bit integers: read as bytes, converted
}
_U32 = struct.Struct("<I")
_ZERO_KEY = bytes(32)
BPS_MAX = 10_000
MAX_IX_NAME = 64


class _Run(NamedTuple):
    """Consecutive fixed-size fields, read with one unpack."""

    whole: struct.Struct
    names: tuple[str, ...]
    singles: tuple[struct.Struct, ...]  # per field, for a short (older) event that ends inside the run
    pubkeys: tuple[int, ...]
    bools: tuple[int, ...]
    wides: tuple[int, ...] = ()  # i128
    bps: tuple[int, ...] = ()  # basis points: at most 10,000
    converted: bool = True  # any of the above: the values need converting or checking


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
    pubkeys = tuple(i for i, kind in enumerate(kinds) if kind == "pubkey")
    bools = tuple(i for i, kind in enumerate(kinds) if kind == "bool")
    wides = tuple(i for i, kind in enumerate(kinds) if kind == "i128")
    bps = tuple(i for i, (name, _) in enumerate(fields) if _is_bps(name))
    return _Run(
        struct.Struct("<" + "".join(codes)),
        tuple(name for name, _ in fields),
        tuple(struct.Struct("<" + code) for code in codes),
        pubkeys,
        bools,
        wides,
        bps,
        bool(pubkeys or bools or wides or bps),
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
    """The bytes break the layout at field ``index`` (a bool that is neither 0 nor 1, a string that
    is not UTF-8 or does not fit, a basis-point field over 10,000...); ``reason`` is a bounded label."""

    def __init__(self, reason: str, index: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


# Why an event's tail did not fit its layout, or was longer than it (bounded: metric labels).
IMPLAUSIBLE_BOOL = "implausible_bool"
IMPLAUSIBLE_BPS = "implausible_bps"
IMPLAUSIBLE_PUBKEY = "implausible_pubkey"
IMPLAUSIBLE_STRING = "implausible_string"
PARTIAL_FIELD = "partial_field"
LONGER_THAN_KNOWN = "longer_than_known"
DRIFT_REASONS = (
    IMPLAUSIBLE_BOOL,
    IMPLAUSIBLE_BPS,
    IMPLAUSIBLE_PUBKEY,
    IMPLAUSIBLE_STRING,
    PARTIAL_FIELD,
    LONGER_THAN_KNOWN,
)


def _is_bps(name: str) -> bool:
    return name.endswith(("basis_points", "_bps"))


def _plausible_key(raw: bytes) -> bool:
    """A public key is 32 uniformly random bytes (or the all-zero system program); six or more zero
    bytes in one (about 3e-9 by chance) is a misaligned integer, not a key."""
    return raw == _ZERO_KEY or raw.count(0) < 6


# The keys decoded so far, all plausible (pubkey()'s memo holds any key): a hit needs no check.
_KEYS: dict[bytes, str] = {}


def _convert(run: _Run, values: list[Any], base: int) -> list[Any]:
    """Pubkeys to base58, bools to bool, i128 to int, in place; basis points checked. ``base``: the
    run's first field's index in its layout."""
    keys = _KEYS
    for i in run.pubkeys:
        raw = values[i]
        text = keys.get(raw)
        if text is None:
            if not _plausible_key(raw):
                raise Undecodable(IMPLAUSIBLE_PUBKEY, base + i)
            if len(keys) >= _MEMO_LIMIT:
                keys.clear()  # bounded, as pubkey()'s
            text = keys[raw] = pubkey(raw)
        values[i] = text
    for i in run.bools:
        flag = values[i]
        if flag > 1:
            raise Undecodable(IMPLAUSIBLE_BOOL, base + i)
        values[i] = flag == 1
    for i in run.wides:
        values[i] = int.from_bytes(values[i], "little", signed=True)
    for i in run.bps:
        if values[i] > BPS_MAX:
            raise Undecodable(IMPLAUSIBLE_BPS, base + i)
    return values


def _head(run: _Run, count: int) -> _Run:
    """The run's first ``count`` fields (a short, older event ends inside it)."""
    return run._replace(
        pubkeys=tuple(i for i in run.pubkeys if i < count),
        bools=tuple(i for i in run.bools if i < count),
        wides=tuple(i for i in run.wides if i < count),
        bps=tuple(i for i in run.bps if i < count),
    )


def _read(steps: tuple[_Step, ...], data: bytes, offset: int, values: list[Any]) -> int:
    """Append the fields' values to ``values`` in layout order, as far as whole fields go; return
    where the last one ended. An event that ends inside a field (not between two) raises ``partial_field``."""
    size = len(data)
    for step in steps:
        if type(step) is _Run:
            whole = step.whole
            if offset + whole.size <= size:
                got = whole.unpack_from(data, offset)
                offset += whole.size
                values += _convert(step, list(got), len(values)) if step.converted else got
                continue
            # A shorter (older) event ends inside this run: the fields that fit, one by one.
            some = []
            for single in step.singles:
                if offset + single.size > size:
                    break
                some.append(single.unpack_from(data, offset)[0])
                offset += single.size
            values += _convert(_head(step, len(some)), some, len(values))
            if offset != size:
                raise Undecodable(PARTIAL_FIELD, len(values))
            return offset
        if offset == size:
            return offset
        if offset + 4 > size:
            raise Undecodable(PARTIAL_FIELD, len(values))
        (length,) = _U32.unpack_from(data, offset)
        if type(step) is _String:
            if offset + 4 + length > size:
                raise Undecodable(IMPLAUSIBLE_STRING, len(values))
            try:
                text = data[offset + 4 : offset + 4 + length].decode("utf-8")
            except UnicodeDecodeError:
                raise Undecodable(IMPLAUSIBLE_STRING, len(values)) from None
            if step.name == "ix_name" and text not in _NAMES:
                if not _identifier(text):
                    raise Undecodable(IMPLAUSIBLE_STRING, len(values))
                if len(_NAMES) < MAX_NAMES:  # a handful in practice (buy, sell, buy_exact_sol_in...)
                    _NAMES.add(text)
            values.append(text)
            offset += 4 + length
        else:
            assert type(step) is _Vec
            item = step.item
            if offset + 4 + length * item.whole.size > size:
                raise Undecodable(PARTIAL_FIELD, len(values))
            offset += 4
            items = []
            for _ in range(length):
                one = _convert(item, list(item.whole.unpack_from(data, offset)), len(values))
                offset += item.whole.size
                items.append(dict(zip(item.names, one, strict=True)))
            values.append(items)
    return offset


_NAMES: set[str] = set()  # instruction names seen, each an identifier
MAX_NAMES = 256


def _identifier(text: str) -> bool:
    """An instruction's name (``buy_exact_sol_in``): short, lower-case ASCII, digits, underscores."""
    return 0 < len(text) <= MAX_IX_NAME and text.isascii() and text.replace("_", "").isalnum() and text.islower()


class Decoded(NamedTuple):
    event: str  # the IDL's event name
    fields: dict[str, Any]  # IDL field names -> exact values (ints, base58 strings, bools, str, lists)
    # Layout drift: None, or why the tail did not fit (then ``fields`` holds only the certain ones)
    # or ``longer_than_known`` (every field known is there; more bytes followed).
    drift: str | None = None


# Why a ``Program data:`` payload gave no event (bounded: these become metric labels).
UNKNOWN_EVENT = "unknown_event"
UNDECODABLE = "undecodable"

PUMP = "pump"
PUMP_AMM = "pump_amm"


class _Compiled(NamedTuple):
    name: str
    steps: tuple[_Step, ...]
    required: int
    relied: int
    names: tuple[str, ...]
    relied_steps: tuple[_Step, ...]  # the relied-on fields only: re-read when the tail drifted


_PLANS: dict[str, dict[bytes, _Compiled]] = {PUMP: {}, PUMP_AMM: {}}
for _layout in LAYOUTS:
    _disc = bytes.fromhex(_layout.discriminator)
    if _disc != discriminator(_layout.name):  # the table's own consistency, checked at import
        raise AssertionError(f"discriminator of {_layout.name}")
    _PLANS[_layout.program][_disc] = _Compiled(
        _layout.name,
        compile_layout(_layout.fields),
        _layout.required,
        _layout.relied or len(_layout.fields),
        tuple(name for name, _ in _layout.fields),
        compile_layout(_layout.fields[: _layout.relied or len(_layout.fields)]),
    )


def decode_event(data: bytes, program: str = PUMP) -> Decoded | str | None:
    """One event (discriminator + Borsh fields) of ``program`` (``pump`` or ``pump_amm``): the
    decoded event, ``None`` for an IDL event pumpsync does not map, or a reason (``unknown_event``,
    ``undecodable``). A tail past the relied-on fields that does not fit gives a ``Decoded`` with
    only those fields and its ``drift`` reason; bytes past the newest known layout, ``longer_than_known``."""
    plan = _PLANS[program].get(data[:8])
    if plan is None:
        if len(data) < 8:
            return UNDECODABLE  # not even a discriminator
        return None if data[:8] in _IGNORED[program] else UNKNOWN_EVENT
    values: list[Any] = []
    drift = None
    try:
        if _read(plan.steps, data, 8, values) < len(data):
            drift = LONGER_THAN_KNOWN
    except Undecodable as exc:
        if exc.index < plan.relied:
            return UNDECODABLE
        # The tail does not fit: only the relied-on fields, each certain (whole runs are converted
        # at once, so the failed run's leading fields are read again on their own).
        drift = exc.reason
        values = []
        try:
            _read(plan.relied_steps, data, 8, values)
        except Undecodable:
            return UNDECODABLE  # a relied-on field is implausible too
    except struct.error:
        return UNDECODABLE
    if len(values) < plan.required:
        return UNDECODABLE
    return Decoded(plan.name, dict(zip(plan.names, values)), drift)  # noqa: B905 (a short event: fewer values)


if sys.version_info >= (3, 11):

    def _b64decode(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)  # not silently skipping stray characters

else:  # pragma: no cover - Python 3.10
    _b64decode = binascii.a2b_base64


def decode_program_data(text: str, program: str = PUMP) -> Decoded | str | None:
    """The base64 of a ``Program data:`` log line (the text after the prefix)."""
    try:
        data = _b64decode(text)
    except (binascii.Error, ValueError):
        return UNDECODABLE
    return decode_event(data, program)


def decode_cpi_data(raw: bytes, program: str = PUMP) -> Decoded | str | None:
    """A self-CPI instruction's data: the event tag, then an event; ``None`` if not an event CPI."""
    if raw[:8] != EVENT_CPI_TAG:
        return None
    return decode_event(raw[8:], program)


__all__ = [
    "DRIFT_REASONS",
    "EVENT_CPI_TAG",
    "LAYOUTS",
    "OTHER_AMM_EVENTS",
    "OTHER_EVENTS",
    "PUMP",
    "PUMP_AMM",
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
