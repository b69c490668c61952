"""How events look on a terminal and in JSON Lines."""

from __future__ import annotations

import json
import os
import time
from typing import TextIO

from pumpsync._json import strict_json
from pumpsync._text import terminal_safe
from pumpsync.events import Event

__all__ = ["terminal_safe", "terminal_width", "to_json_line", "to_text"]


def to_json_line(event: Event) -> str:
    """One JSON Lines record: ``event.to_dict()`` as strict JSON (a provider's NaN becomes null)."""
    return strict_json(event.to_dict())


def terminal_width(out: TextIO) -> int | None:
    """The columns of the terminal ``out`` writes to; ``None`` when it is a pipe or a file (nothing is cut)."""
    try:
        if not out.isatty():
            return None
        return os.get_terminal_size(out.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        return None


def _sol(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4f} SOL"


_TAGS = {
    "trade": "",
    "new_token": "NEW",
    "token_enriched": "META",
    "graduation": "GRAD",
    "migration": "MIGR",
    "price": "PRICE",
}


def to_text(event: Event, width: int | None = None) -> str:
    """One line per event: time, what, the full mint (pasteable), then details.

    With ``width`` (a terminal's columns), details are cut from the end so that the line fits;
    the time, the tag and the mint are never cut.
    """
    clock = time.strftime("%H:%M:%S", time.localtime(event.received_at / 1000))
    kind = event.kind
    tag = (event.side or "?").upper() if kind == "trade" else _TAGS.get(kind, "?")
    details: list[str] = []
    if kind == "trade":
        details.append(_sol(event.sol_amount))
        if event.trader:
            details.append(f"by {event.trader}")
    elif kind in ("new_token", "token_enriched", "graduation", "migration"):
        if event.symbol or event.name:
            details.append(f"{event.symbol or '?'} ({event.name or '?'})")
        if event.market_cap_sol is not None:
            details.append(f"mcap {event.market_cap_sol:,.1f} SOL")
        if event.bonding_curve_progress is not None:
            details.append(f"curve {event.bonding_curve_progress:.0f}%")
        if event.liquidity_sol is not None:
            details.append(f"liquidity {event.liquidity_sol:,.1f} SOL")
    elif kind == "price":
        if event.price_sol is not None:
            details.append(f"{event.price_sol:.10f} SOL")
    else:
        details.append(json.dumps(event.raw, default=str))
    if event.backfill:
        details.append("[backfill]")
    # The provider names the source of each line (several sources: whose copy came first).
    source = f"{event.provider:<10.10}"
    head = f"{clock} {source} {tag:5} {event.mint or '-'}" if kind != "unknown" else f"{clock} {source} ?    "
    line = terminal_safe(f"{head}  {'  '.join(details)}".rstrip())
    if width is not None and len(line) > width:
        line = line[: max(width - 1, len(head))].rstrip() + "…"
    return line
