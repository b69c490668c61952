"""How events look on a terminal and in JSON Lines."""

from __future__ import annotations

import json
import math
import time
import unicodedata
from typing import Any

from pumpsync.events import Event


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity; a hostile provider may still send them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# Provider strings are untrusted: a token named "\x1b]0;pwned\x07" must not drive the terminal.
_CONTROLS = {c: "?" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
# Invisible characters that change what the line appears to say: bidi overrides and isolates
# (U+202E, U+2066..), zero-width ones, line/paragraph separators (U+2028), lone surrogates.
_INVISIBLE = frozenset(("Cf", "Zl", "Zp", "Cs", "Co", "Cn"))


def terminal_safe(text: str) -> str:
    """``text`` fit for a terminal: control characters as ``?``, invisible format characters
    (bidi overrides, zero-width, U+2028...) escaped as ``\\uXXXX``, so that they show."""
    text = text.translate(_CONTROLS)
    if text.isascii():
        return text
    return "".join(
        f"\\u{ord(ch):04x}" if ord(ch) > 0x7F and unicodedata.category(ch) in _INVISIBLE else ch for ch in text
    )


def to_json_line(event: Event) -> str:
    data = event.to_dict()
    try:
        return json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError:
        return json.dumps(_finite(data), separators=(",", ":"), ensure_ascii=False)


def _short(text: str | None, width: int = 12) -> str:
    if not text:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _sol(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4f} SOL"


def to_text(event: Event) -> str:
    """One readable line per event."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.received_at / 1000)) + f".{event.received_at % 1000:03d}"
    kind = event.kind
    if kind == "trade":
        detail = f"{(event.side or '?').upper():4} {_sol(event.sol_amount):>16}  {_short(event.mint, 16)}"
        if event.trader:
            detail += f"  by {_short(event.trader, 10)}"
    elif kind in ("new_token", "token_enriched", "graduation"):
        label = f"{event.symbol or '?'} ({_short(event.name, 24)})" if event.symbol or event.name else "(metadata soon)"
        detail = f"{label:36} {_short(event.mint, 16)}"
        if event.market_cap_sol is not None:
            detail += f"  mcap {event.market_cap_sol:,.1f} SOL"
        if event.liquidity_sol is not None:
            detail += f"  liquidity {event.liquidity_sol:,.1f} SOL"
    elif kind == "price":
        detail = f"{_short(event.mint, 16)}  {event.price_sol:.10f} SOL" if event.price_sol is not None else "-"
    else:
        detail = _short(json.dumps(event.raw, default=str), 80)
    tags = " [backfill]" if event.backfill else ""
    return terminal_safe(f"{clock}  {kind:14} {detail}{tags}")
