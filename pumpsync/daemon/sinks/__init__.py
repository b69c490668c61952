"""Sinks: where the daemon sends events. Several at once; each on its own thread.

A sink is described by a mapping (a ``[[sinks]]`` table of the config file) or a short
``--sink`` string:

===============================  =========================================================
``stdout``                       JSON Lines on standard output (the default)
``jsonl:PATH``                   JSON Lines appended to PATH, reopened on SIGHUP
``sqlite:PATH``                  SQLite database (WAL), one row per event, no duplicates
``webhook:URL``                  POST JSON arrays of events to URL
``callable:MODULE:FUNCTION``     call FUNCTION(event) for each event
``redis://HOST:PORT/DB``         append to a Redis Stream (``pumpsync[redis]``; see ``providers/redis/sink.py``)
``candles:PATH``                 the market view's closed OHLCV candles (SQLite if .db, else JSON Lines)
===============================  =========================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pumpsync._json import strict_json
from pumpsync._ranges import RANGES, check_range
from pumpsync._secrets import redact, remember_url
from pumpsync.daemon.sinks.base import PermanentFailure, Sink, event_json, identity_key
from pumpsync.daemon.sinks.candles import CandleSink
from pumpsync.daemon.sinks.function import CallableSink
from pumpsync.daemon.sinks.jsonl import FileSink, StdoutSink
from pumpsync.daemon.sinks.redis import RedisSink
from pumpsync.daemon.sinks.sqlite import SqliteSink
from pumpsync.daemon.sinks.webhook import WebhookSink
from pumpsync.errors import ConfigurationError

SINK_TYPES: dict[str, type[Sink]] = {
    "stdout": StdoutSink,
    "jsonl": FileSink,
    "sqlite": SqliteSink,
    "webhook": WebhookSink,
    "callable": CallableSink,
    "redis": RedisSink,
    "candles": CandleSink,
}
_ALIASES = {"file": "jsonl", "rediss": "redis"}
_URL_SINKS = ("redis",)  # the whole --sink text is the URL (redis://...)
# (key, type, required) per sink type, besides the common keys.
_COMMON = {"type": str, "name": str, "buffer": int, "batch_size": int, "write_timeout": float}
_KEYS: dict[str, dict[str, type]] = {
    "stdout": {},
    "jsonl": {"path": str, "fsync": bool, "linger": float},
    "sqlite": {"path": str, "linger": float},
    "webhook": {
        "url": str,
        "headers": dict,
        "timeout": float,
        "attempts": int,
        "linger": float,
        "retry_initial": float,
        "retry_max": float,
    },
    "callable": {"target": str},
    "redis": {"url": str, "timeout": float, "linger": float, "retry_initial": float, "retry_max": float},
    "candles": {"path": str, "linger": float},
}
_REQUIRED = {
    "jsonl": "path", "sqlite": "path", "webhook": "url", "callable": "target", "redis": "url", "candles": "path"
}  # fmt: skip


def parse_sink(text: str) -> dict[str, Any]:
    """A ``--sink`` string as a sink table; its errors show it redacted (a URL's password)."""
    remember_url(text)  # a redis:// password, a webhook's key: never in a log record
    shown = redact(text)
    kind, sep, rest = text.strip().partition(":")
    kind = _ALIASES.get(kind, kind)
    if kind not in SINK_TYPES:
        raise ConfigurationError("sink", f"{shown!r}: unknown sink type (one of {', '.join(SINK_TYPES)})")
    required = _REQUIRED.get(kind)
    if required is None:
        if sep:
            raise ConfigurationError("sink", f"{shown!r}: {kind} takes no argument")
        return {"type": kind}
    if not rest:
        raise ConfigurationError("sink", f"{shown!r}: {kind} needs {kind}:{required.upper()}")
    return {"type": kind, required: text.strip() if kind in _URL_SINKS else rest}


def _in_range(key: str, value: float) -> bool:
    if not math.isfinite(value):
        return False
    return value >= 0 if key == "linger" else value > 0


def _check(index: int, spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    where = f"sinks[{index}]"
    kind = spec.get("type")
    kind = _ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in SINK_TYPES:
        raise ConfigurationError(where, f"type must be one of {', '.join(SINK_TYPES)} (got {kind!r})")
    allowed = {**_COMMON, **_KEYS[kind]}
    options: dict[str, Any] = {}
    for key, value in spec.items():
        expected = allowed.get(key)
        if expected is None:
            raise ConfigurationError(where, f"{kind} has no option {key!r}")
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigurationError(where, f"{key} must be a {expected.__name__}")
        if key in RANGES:
            check_range(key, value, f"{where}.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_range(key, value):
            raise ConfigurationError(where, f"{key} must be {'>= 0' if key == 'linger' else 'positive'}")
        if key != "type":
            options[key] = value
    required = _REQUIRED.get(kind)
    if required is not None and not options.get(required):
        raise ConfigurationError(where, f"{kind} needs {required}")
    if "headers" in options and not all(isinstance(v, str) for v in options["headers"].values()):
        raise ConfigurationError(where, "headers must map names to strings")
    return kind, options


def build_sinks(specs: Sequence[Mapping[str, Any]]) -> list[Sink]:
    """Sinks from their tables (not started). Names default to the type, made unique with -2, -3..."""
    sinks: list[Sink] = []
    names: set[str] = set()
    for index, spec in enumerate(specs or [{"type": "stdout"}]):
        kind, options = _check(index, spec)
        base = options.pop("name", None) or kind
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.add(name)
        try:
            sinks.append(SINK_TYPES[kind](name, **options))
        except ValueError as exc:
            raise ConfigurationError(f"sinks[{index}]", str(exc)) from None
    return sinks


__all__ = [
    "SINK_TYPES",
    "CallableSink",
    "FileSink",
    "PermanentFailure",
    "RedisSink",
    "Sink",
    "SqliteSink",
    "StdoutSink",
    "WebhookSink",
    "build_sinks",
    "event_json",
    "identity_key",
    "parse_sink",
    "strict_json",
]
