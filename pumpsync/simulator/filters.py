"""Anaxer subscription / query filters: validation and matching.

Both vocabularies are accepted on every channel: the v1 names (``sources, mints, wallets,
minVolumeUsd, maxVolumeUsd, enriched, excludeMayhem, minLiquiditySol, solOnly``) and the
document's (``exchange, side, minSol``). Unknown keys are ignored, as the service does;
a known key with the wrong JSON type is an ``invalid_filters`` error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pumpsync.simulator.market import SOL_MINT


class FilterError(ValueError):
    pass


def _str_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f"filter {name!r} must be an array of strings")
    return list(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FilterError(f"filter {name!r} must be a number")
    return float(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FilterError(f"filter {name!r} must be a boolean")
    return value


def _exchange(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return _str_list(name, value)


def _side(name: str, value: Any) -> str:
    if value not in ("buy", "sell"):
        raise FilterError(f'filter {name!r} must be "buy" or "sell"')
    return str(value)


_VALIDATORS: dict[str, Callable[[str, Any], Any]] = {
    "sources": _str_list,
    "mints": _str_list,
    "wallets": _str_list,
    "minVolumeUsd": _number,
    "maxVolumeUsd": _number,
    "enriched": _boolean,
    "excludeMayhem": _boolean,
    "minLiquiditySol": _number,
    "solOnly": _boolean,
    "exchange": _exchange,
    "side": _side,
    "minSol": _number,
}


def validate(filters: Any) -> dict[str, Any]:
    """Normalized copy of ``filters`` (``None`` = no filters); raises ``FilterError``."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise FilterError("filters must be an object")
    out: dict[str, Any] = {}
    for name, value in filters.items():
        check = _VALIDATORS.get(name)
        if check is None or value is None:
            continue  # unknown keys are ignored; null means "not set"
        out[name] = check(name, value)
    return out


def _wallet_of(record: Mapping[str, Any]) -> str | None:
    wallet = record.get("wallet", record.get("creator"))
    return wallet if isinstance(wallet, str) else None


def _is_sol_swap(record: Mapping[str, Any]) -> bool:
    legs = record.get("swap") or {}
    return any((legs.get(side) or {}).get("mint") == SOL_MINT for side in ("from", "to"))


def matches(filters: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Does a document-form record (v1 payload + convenience fields) pass ``filters``?

    A filter that does not apply to the record's channel is ignored."""
    rtype = record.get("type")
    for name, want in filters.items():
        if name in ("sources", "exchange") and record.get("source") not in want:
            return False
        if name == "mints" and record.get("mint") not in want:
            return False
        if name == "wallets" and _wallet_of(record) not in want:
            return False
        if not _matches_channel_specific(name, want, rtype, record):
            return False
    return True


def _matches_channel_specific(name: str, want: Any, rtype: Any, record: Mapping[str, Any]) -> bool:
    if rtype == "swap":
        volume = record.get("volumeUsd")
        if name == "minVolumeUsd":
            return volume is not None and volume >= want
        if name == "maxVolumeUsd":
            return volume is not None and volume <= want
        if name == "solOnly" and want:
            return _is_sol_swap(record)
        if name == "side":
            return bool(record.get("side") == want)
        if name == "minSol":
            return bool(float(record.get("solAmount", 0.0)) >= want)
    if rtype in ("created", "graduated"):
        if name == "excludeMayhem" and want:
            return not record.get("mayhemMode")
        if name == "enriched" and want:
            return record.get("name") is not None
    if rtype == "graduated" and name == "minLiquiditySol":
        liquidity = record.get("liquiditySol")
        return liquidity is not None and liquidity >= want
    return True
