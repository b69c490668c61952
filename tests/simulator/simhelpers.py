"""Helpers for the simulator tests: sync loopback clients and a small JSON schema checker."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pumpsync.simulator import Simulator

RECV_TIMEOUT = 5.0

# A connection returned to the caller rather than used in a ``with connect(...)`` block: websockets
# 17.1 documents ``connect(..., legacy=True)`` for that (without it, it warns); older ones have no flag.
DIRECT: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


def ws_connect(
    url: str, key: str | None = "test-key", *, param: str | None = None, bearer: bool = False, **kwargs: Any
) -> ClientConnection:
    """Open a client. The key goes in the ``param`` query parameter or a Bearer header."""
    headers = {}
    if key is not None and bearer:
        headers["Authorization"] = f"Bearer {key}"
    elif key is not None:
        url = f"{url}?{param}={key}"
    kwargs.setdefault("open_timeout", RECV_TIMEOUT)
    kwargs.setdefault("close_timeout", 0.3)  # test clients often leave frames unread
    return connect(url, additional_headers=headers or None, **DIRECT, **kwargs)


def op_connect(sim: Simulator, key: str | None = "test-key", **kwargs: Any) -> ClientConnection:
    return ws_connect(sim.url("openpump"), key, param="api_key", **kwargs)


def ax_connect(sim: Simulator, key: str | None = "test-key", **kwargs: Any) -> ClientConnection:
    return ws_connect(sim.url("anaxer"), key, param="key", **kwargs)


def recv_json(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> Any:
    return json.loads(ws.recv(timeout=timeout))


def recv_until(ws: ClientConnection, predicate: Callable[[Any], bool], timeout: float = RECV_TIMEOUT) -> Any:
    """Next JSON message matching ``predicate`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no matching message")
        msg = recv_json(ws, remaining)
        if predicate(msg):
            return msg


def recv_n(ws: ClientConnection, n: int, timeout: float = RECV_TIMEOUT) -> list[Any]:
    return [recv_json(ws, timeout) for _ in range(n)]


def assert_silent(ws: ClientConnection, window: float = 0.3) -> None:
    """Nothing arrives within ``window`` (used only to check an absence)."""
    with pytest.raises(TimeoutError):
        ws.recv(timeout=window)


def expect_close(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> tuple[int | None, str]:
    """Read until the server closes; (close code or None when no close frame, reason)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("connection still open")
            ws.recv(timeout=remaining)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (None, "")


# -- schema checking ----------------------------------------------------------------------
# A schema maps each field to a type name ("int", "number", "str", "bool", "null", unions
# with "|", or a literal value via ("=", value)) or to a nested schema dict.


def _type_ok(value: Any, spec: str) -> bool:
    checks = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "list": lambda v: isinstance(v, list),
        "dict": lambda v: isinstance(v, dict),
    }
    return any(checks[part](value) for part in spec.split("|"))


def check_schema(obj: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Exact field set and JSON types."""
    assert isinstance(obj, dict), f"{where}: expected an object, got {obj!r}"
    assert set(obj) == set(schema), (
        f"{where}: missing {sorted(set(schema) - set(obj))}, unexpected {sorted(set(obj) - set(schema))}"
    )
    for name, spec in schema.items():
        value = obj[name]
        if isinstance(spec, dict):
            check_schema(value, spec, f"{where}.{name}")
        elif isinstance(spec, tuple):
            assert value == spec[1], f"{where}.{name}: {value!r} != {spec[1]!r}"
        else:
            assert _type_ok(value, spec), f"{where}.{name}: {value!r} is not {spec}"


# -- expected wire shapes, written from the provider documents ----------------------------

# OpenPump (document 000).
OP_STATUS = {"running": "bool", "subscriptionId": "int", "processedCount": "int"}
OP_CONNECTED = {"type": ("=", "connected"), "message": "str", "timestamp": "int", "status": OP_STATUS}
OP_NEW_TOKEN = {"type": ("=", "new_token"), "timestamp": "int", "mint": "str", "signature": "str", "creator": "str"}
OP_TOKEN_ENRICHED = {
    **OP_NEW_TOKEN,
    "type": ("=", "token_enriched"),
    "name": "str",
    "symbol": "str",
    "description": "str",
    "image": "str",
    "bondingCurve": {"progress": "number", "solRaised": "number", "currentPrice": "number", "marketCap": "number"},
}
OP_TRADE = {
    "type": "str",
    "timestamp": "int",
    "mint": "str",
    "signature": "str",
    "trader": "str",
    "solAmount": "number",
    "tokenAmount": "int",
}
OP_PONG = {"type": ("=", "pong"), "timestamp": "int"}
OP_STATUS_REPLY = {"type": ("=", "status"), "data": OP_STATUS, "timestamp": "int"}

# Anaxer v1 payloads (the official SDK's models.py / the v1 reference).
AX_LEG = {"mint": "str", "amount": "str", "uiAmount": "number", "decimals": "int"}
AX_SWAP = {
    "type": ("=", "swap"),
    "source": "str",
    "wallet": "str",
    "volumeUsd": "number|null",
    "swap": {"from": AX_LEG, "to": AX_LEG},
    "signature": "str",
    "slot": "int",
    "timestamp": "int|null",
}
AX_SOCIALS = {"website": "str|null", "twitter": "str|null", "telegram": "str|null"}
AX_CREATED = {
    "type": ("=", "created"),
    "source": "str",
    "mint": "str|null",
    "name": "str|null",
    "symbol": "str|null",
    "creator": "str|null",
    "uri": "str|null",
    "mayhemMode": "bool",
    "socials": AX_SOCIALS,
    "signature": "str",
    "slot": "int",
    "timestamp": "int|null",
}
AX_GRADUATED = {
    **AX_CREATED,
    "type": ("=", "graduated"),
    "liquiditySol": "number|null",
    "timeToGraduateSeconds": "number|null",
}
AX_PRICE = {
    "type": ("=", "price"),
    "source": "str",
    "mint": "str",
    "price": {"sol": "number", "usd": "number|null"},
    "marketCapUsd": "number|null",
    "slot": "int",
    "timestamp": "int|null",
}
AX_PAYLOADS = {"trades": AX_SWAP, "creations": AX_CREATED, "graduations": AX_GRADUATED, "prices": AX_PRICE}

# Anaxer document form / REST items: the v1 payload plus the document's convenience fields.
AX_DOC_RECORDS = {
    "trades": {
        **AX_SWAP,
        "mint": "str",
        "side": "str",
        "solAmount": "number",
        "tokenAmount": "number",
        "priceSol": "number",
        "exchange": ("=", "pumpfun"),
    },
    "creations": {**AX_CREATED, "exchange": ("=", "pumpfun")},
    "graduations": {**AX_GRADUATED, "exchange": ("=", "pumpfun")},
    "prices": {**AX_PRICE, "priceSol": "number"},
}

V1_CONNECTED = {
    "v": ("=", 1),
    "type": ("=", "connected"),
    "ts": "int",
    "limits": {"connectionsPerStream": "int", "tradesRequiresMints": "bool", "tradesMintCap": "int"},
}
V1_SUBSCRIBED = {
    "v": ("=", 1),
    "type": ("=", "subscribed"),
    "id": "str",
    "channel": "str",
    "filters": "dict",
    "ts": "int",
}
V1_UNSUBSCRIBED = {"v": ("=", 1), "type": ("=", "unsubscribed"), "id": "str", "ts": "int"}
V1_PONG = {"v": ("=", 1), "type": ("=", "pong"), "ts": "int"}
V1_ERROR = {"v": ("=", 1), "type": ("=", "error"), "code": "str", "message": "str", "ts": "int"}
V1_SUB_ERROR = {**V1_ERROR, "id": "str"}
V1_DATA = {"v": ("=", 1), "channel": "str", "type": "str", "sub": "str", "ts": "int", "data": "dict"}
DOC_SUBSCRIBED = {"type": ("=", "subscribed"), "channel": "str"}
DOC_UNSUBSCRIBED = {"type": ("=", "unsubscribed"), "channel": "str"}
DOC_ERROR = {"type": ("=", "error"), "code": "str", "channel": "str", "message": "str"}
DOC_PING = {"type": ("=", "ping")}
DOC_PONG = {"type": ("=", "pong"), "ts": "int"}  # the document shows none; ours adds the time

REST_PAGE = {"data": "list", "next": "str|null", "window": {"from": "int", "to": "int"}}
REST_ERROR = {"error": {"code": "str", "message": "str"}}
