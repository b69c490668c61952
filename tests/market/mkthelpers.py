"""Events for the market tests, built the way the dialects build them."""

from __future__ import annotations

from typing import Any

from pumpsync.events import Event

MINT = "MintAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAApump"
DEV = "DevWaLLet1111111111111111111111111111111111"
T0 = 1_796_000_000_000  # epoch ms
SLOT0 = 400_000_000


def launch(
    mint: str = MINT, creator: str = DEV, slot: int | None = SLOT0, ms: int = T0, sig: str = "L", **kw: Any
) -> Event:
    return Event(
        "new_token", "test", mint, sig, slot, ms, ms, 0, False, {}, name="Test", symbol="TST", creator=creator, **kw
    )


def trade(
    trader: str, side: str, tokens: float, sol: float, *, slot: int | None = SLOT0, ms: int = T0,
    sig: str | None = None, mint: str = MINT, venue: str | None = None,
) -> Event:  # fmt: skip
    event = Event(
        "trade", "test", mint, sig or f"S-{trader}-{side}-{slot}-{ms}-{tokens}", slot, ms, ms, 0, False, {},
        side=side, sol_amount=sol, token_amount=tokens, trader=trader, price_sol=sol / tokens if tokens else None,
    )  # fmt: skip
    return with_venue(event, venue)


def with_venue(event: Event, venue: str | None) -> Event:
    """``event`` with ``venue`` set where this Event has the field (the onchain branch adds it); else as is."""
    if venue is not None and "venue" in Event._fields:
        return event._replace(venue=venue)  # type: ignore[call-arg]
    return event


def has_venue() -> bool:
    return "venue" in Event._fields


def scenario_trade() -> Event:
    return trade("A", "buy", 20_000_000, 0.7)
