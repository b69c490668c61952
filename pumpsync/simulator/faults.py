"""Fault-injection state and the malformed frames each provider / form can be sent.

Malformed frames are never recorded in a feed's history and use identifiers that no
market event uses, so tests can tell them apart from real events.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Literal

from pumpsync.simulator import _ids
from pumpsync.simulator.connection import Form

MalformedKind = Literal["not_json", "json_array", "unknown_type", "missing_fields", "binary", "oversized"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = (
    "not_json",
    "json_array",
    "unknown_type",
    "missing_fields",
    "binary",
    "oversized",
)


@dataclass(frozen=True)
class Reject:
    """How to refuse one upcoming WebSocket connection attempt."""

    status: int = 503
    close_code: int | None = None  # set: accept the upgrade, then close with this code


@dataclass(frozen=True)
class RestFailure:
    status: int = 429
    retry_after: float = 1.0


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def pad_to_size(obj: dict[str, Any], path: tuple[str, ...], size: int) -> str:
    """Serialize ``obj`` with the string at ``path`` extended so the text is ``size`` bytes."""
    target = obj
    for key in path[:-1]:
        target = target[key]
    base = dumps(obj)
    target[path[-1]] = str(target[path[-1]]) + "x" * max(0, size - len(base.encode()))
    return dumps(obj)


_rng = random.Random()


def _openpump_token(ms: int) -> dict[str, Any]:
    return {
        "type": "new_token",
        "timestamp": ms,
        "mint": _ids.pump_mint(_rng),
        "signature": _ids.signature(_rng),
        "creator": _ids.wallet(_rng),
    }


def openpump_malformed(kind: MalformedKind, ms: int, size: int) -> str | bytes:
    if kind == "missing_fields":
        frame = _openpump_token(ms)
        del frame["mint"]
        return dumps(frame)
    if kind == "binary":
        return dumps(_openpump_token(ms)).encode()
    if kind == "oversized":
        frame = {
            **_openpump_token(ms),
            "type": "token_enriched",
            "name": "Oversized Token",
            "symbol": "HUGE",
            "description": "",
            "image": f"https://ipfs.io/ipfs/{_ids.ipfs_cid(_rng)}",
            "bondingCurve": {"progress": 0.0, "solRaised": 0.0, "currentPrice": 2.8e-8, "marketCap": 27.96},
        }
        return pad_to_size(frame, ("description",), size)
    return _common_malformed(kind, {"type": "sim_unknown_event", "timestamp": ms})


def _anaxer_created(ms: int, slot: int) -> dict[str, Any]:
    return {
        "type": "created",
        "source": "pumpfun",
        "mint": _ids.pump_mint(_rng),
        "name": "Malformed Token",
        "symbol": "MALF",
        "creator": _ids.wallet(_rng),
        "uri": f"https://ipfs.io/ipfs/{_ids.ipfs_cid(_rng)}",
        "mayhemMode": False,
        "socials": {"website": None, "twitter": None, "telegram": None},
        "signature": _ids.signature(_rng),
        "slot": slot,
        "timestamp": ms,
    }


def anaxer_malformed(
    kind: MalformedKind, form: Form | None, sub_id: str | None, ms: int, slot: int, size: int
) -> str | bytes:
    """``form`` None (still unknown) is treated as v1, the form the server announced."""
    payload = _anaxer_created(ms, slot)
    if form == "document":
        frame: dict[str, Any] = {**payload, "exchange": "pumpfun"}
        data_path: tuple[str, ...] = ()
        unknown: dict[str, Any] = {"type": "sim_unknown_event", "slot": slot}
    else:
        frame = {"v": 1, "channel": "creations", "type": "created", "sub": sub_id or "sub-1", "ts": ms, "data": payload}
        data_path = ("data",)
        unknown = {"v": 1, "type": "sim_unknown_event", "ts": ms}
    if kind == "missing_fields":
        target = frame["data"] if data_path else frame
        for name in ("mint", "signature", "slot"):
            del target[name]
        return dumps(frame)
    if kind == "binary":
        return dumps(frame).encode()
    if kind == "oversized":
        return pad_to_size(frame, (*data_path, "uri"), size)
    return _common_malformed(kind, unknown)


def _common_malformed(kind: MalformedKind, unknown: dict[str, Any]) -> str:
    if kind == "not_json":
        return '{"type": "new_token", this is not JSON'
    if kind == "json_array":
        return dumps([{"type": "sim_array_item"}, 1, "two"])
    if kind == "unknown_type":
        return dumps(unknown)
    raise ValueError(f"unknown malformed kind {kind!r}; expected one of {MALFORMED_KINDS}")
