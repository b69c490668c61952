"""Values from outside, typed and bounded before use: one concept, one place.

The dialects' field readers (``providers/base.py``) and the readers of recorded events (the
Redis source, replay) use these. Whatever fails is one bad item: counted and skipped by the
caller, never an exception that ends a session.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping
from typing import Any

from pumpsync.events import KINDS, Event

# Integers outside a signed 64-bit range are refused: no real slot or timestamp is that large, and
# downstream stores (SQLite INTEGER, Prometheus) cannot hold them.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# An int beyond this has no float (float(10**400) raises OverflowError).
FLOAT_MAX = sys.float_info.max
# The longest string any field takes (a token description is the longest real one, ~1,000).
MAX_TEXT = 10_000
# Labels (kind, provider, side, channel, pool) are short words.
MAX_LABEL = 64
# A decimal number as a string (Anaxer's amounts): no real one is longer.
MAX_NUMBER_TEXT = 64

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_VALUE = {ch: i for i, ch in enumerate(_B58)}


def bounded_str(value: Any, limit: int = MAX_TEXT) -> str | None:
    """``value`` if it is a string of at most ``limit`` characters, else None."""
    return value if type(value) is str and len(value) <= limit else None


def bounded_int(value: Any) -> int | None:
    """A whole number in the signed 64-bit range (an integral float too), else None."""
    if type(value) is int:
        return value if INT_MIN <= value <= INT_MAX else None
    if type(value) is float and value.is_integer() and INT_MIN <= value <= INT_MAX:
        return int(value)
    return None


def finite_float(value: Any) -> float | None:
    """A finite number (an int that has a float, a decimal string of sane length), else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value) if -FLOAT_MAX <= value <= FLOAT_MAX else None
    if kind is str and len(value) <= MAX_NUMBER_TEXT:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def is_address(text: str) -> bool:
    """Whether ``text`` is a Solana address: base58 that decodes to exactly 32 bytes."""
    return 32 <= len(text) <= 44 and _decodes_to_32_bytes(text)


@functools.lru_cache(maxsize=8192)  # a mint recurs in every trade of it: decoded once (keys <= 44 chars)
def _decodes_to_32_bytes(text: str) -> bool:
    number = 0
    for ch in text:
        digit = _B58_VALUE.get(ch)
        if digit is None:
            return False
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))  # each leading "1" is a zero byte
    return zeros + (number.bit_length() + 7) // 8 == 32


# ---------------------------------------------------------------- recorded events (Redis, replay)

_INTS = ("received_at", "connection")
_OPTIONAL_INTS = ("slot", "timestamp")
_LABELS = ("kind", "provider")
_OPTIONAL_LABELS = ("channel", "side", "pool")
# Event's fields by annotation (NamedTuple keeps them as ForwardRefs: their text is what counts).
_TYPES = {name: getattr(kind, "__forward_arg__", kind) for name, kind in Event.__annotations__.items()}
_FLOATS = tuple(name for name, kind in _TYPES.items() if kind == "float | None")  # amounts, prices, reserves
_TEXTS = tuple(name for name, kind in _TYPES.items() if kind == "str | None" and name not in _OPTIONAL_LABELS)
assert len(_FLOATS) >= 14 and len(_TEXTS) >= 8, "Event's annotations changed form"


class BadRecord(ValueError):
    """A recorded event with a field of the wrong type or out of bounds; ``reason`` names it."""


def event_from_record(data: Mapping[str, Any]) -> Event:
    """``Event.from_dict(data)`` with every field typed and bounded (``BadRecord`` says which is not).

    A ``kind`` this version does not know becomes ``unknown`` (the record stays in ``raw``): kinds
    become metric labels, and a writer inventing one per entry must not grow the metrics."""
    event = Event.from_dict(data)  # ValueError: a required key is missing
    fixes: dict[str, Any] = {}
    for name in _LABELS:
        if bounded_str(getattr(event, name), MAX_LABEL) is None:
            raise BadRecord(f"{name} is not a short string")
    for name in _OPTIONAL_LABELS:
        value = getattr(event, name)
        if value is not None and bounded_str(value, MAX_LABEL) is None:
            raise BadRecord(f"{name} is not a short string")
    for name in _TEXTS:
        value = getattr(event, name)
        if value is not None and bounded_str(value) is None:
            raise BadRecord(f"{name} is not a string of at most {MAX_TEXT} characters")
    for name in _INTS:
        if bounded_int(getattr(event, name)) is None:
            raise BadRecord(f"{name} is not a whole number")
    for name in _OPTIONAL_INTS:
        value = getattr(event, name)
        if value is not None and (bounded_int(value) is None or value < 0):
            raise BadRecord(f"{name} is not a whole number >= 0")
    for name in _FLOATS:
        value = getattr(event, name)
        if value is not None and (type(value) not in (int, float) or finite_float(value) is None):
            raise BadRecord(f"{name} is not a finite number")
        if type(value) is int:  # 2 recorded for 2.0
            fixes[name] = float(value)
    if type(event.backfill) is not bool:
        raise BadRecord("backfill is not true or false")
    if type(event.raw) is not dict:
        raise BadRecord("raw is not an object")
    for name in _INTS + _OPTIONAL_INTS:  # 5.0 recorded for 5
        value = getattr(event, name)
        if type(value) is float:
            fixes[name] = int(value)
    if event.kind not in KINDS:
        fixes.update(kind="unknown", raw=dict(data))
    return event._replace(**fixes) if fixes else event


__all__ = [
    "FLOAT_MAX",
    "INT_MAX",
    "INT_MIN",
    "MAX_LABEL",
    "MAX_TEXT",
    "BadRecord",
    "bounded_int",
    "bounded_str",
    "event_from_record",
    "finite_float",
    "is_address",
]
