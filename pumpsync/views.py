"""One type per event kind, for a type checker: ``event.as_typed()``.

:class:`~pumpsync.Event` is one flat ``NamedTuple`` for every kind (fields a kind does not have are
``None``). Its views here carry only their kind's fields, with ``kind`` a single ``Literal``, so
that ``mypy --strict`` (or pyright) narrows :data:`TypedEvent` on ``kind`` or in a ``match``::

    match event.as_typed():
        case pumpsync.Trade(side="buy", sol_amount=sol, mint=mint):
            print("buy", mint, sol)              # sol: float | None; a Trade has no liquidity_sol
        case pumpsync.Launch(symbol=symbol):
            print("launch", symbol)
        case _:
            pass

Fields a provider may leave out stay ``Optional``, as in ``Event``. The views are ``NamedTuple``
copies made on demand: the flat ``Event`` stays what the client delivers.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pumpsync.events import Event


class Launch(NamedTuple):
    """A token launch (``kind == "new_token"``): the token, its curve and the creator's first buy."""

    kind: Literal["new_token"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    name: str | None
    symbol: str | None
    creator: str | None
    uri: str | None
    image: str | None
    description: str | None
    bonding_curve_progress: float | None
    sol_raised: float | None
    market_cap_sol: float | None
    price_sol: float | None
    initial_buy_tokens: float | None
    initial_buy_sol: float | None
    virtual_sol_reserves: float | None
    virtual_token_reserves: float | None
    pool: str | None


class TokenEnriched(NamedTuple):
    """More about a launched token (``kind == "token_enriched"``): metadata and curve figures."""

    kind: Literal["token_enriched"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    name: str | None
    symbol: str | None
    creator: str | None
    uri: str | None
    image: str | None
    description: str | None
    bonding_curve_progress: float | None
    sol_raised: float | None
    market_cap_sol: float | None
    price_sol: float | None


class Trade(NamedTuple):
    """A buy or a sell on the bonding curve (``kind == "trade"``); amounts in SOL and whole tokens."""

    kind: Literal["trade"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    side: Literal["buy", "sell"] | None
    sol_amount: float | None
    token_amount: float | None
    trader: str | None
    price_sol: float | None
    market_cap_sol: float | None


class Graduation(NamedTuple):
    """The bonding curve is complete (``kind == "graduation"``)."""

    kind: Literal["graduation"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    name: str | None
    symbol: str | None
    creator: str | None
    uri: str | None
    image: str | None
    description: str | None
    liquidity_sol: float | None
    time_to_graduate_s: float | None


class Migration(NamedTuple):
    """The token's liquidity moved to an AMM pool (``kind == "migration"``)."""

    kind: Literal["migration"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    liquidity_sol: float | None


class Price(NamedTuple):
    """A token's price (``kind == "price"``)."""

    kind: Literal["price"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None
    price_sol: float | None
    price_usd: float | None
    market_cap_usd: float | None


class Unknown(NamedTuple):
    """A JSON object the provider's dialect did not recognise (``kind == "unknown"``): see ``raw``."""

    kind: Literal["unknown"]
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None


# What ``Event.as_typed()`` returns: a union tagged by ``kind``.
TypedEvent = Launch | TokenEnriched | Trade | Graduation | Migration | Price | Unknown

VIEWS: dict[str, type[TypedEvent]] = {
    "new_token": Launch,
    "token_enriched": TokenEnriched,
    "trade": Trade,
    "graduation": Graduation,
    "migration": Migration,
    "price": Price,
    "unknown": Unknown,
}


def view_of(event: Event) -> TypedEvent:
    """``event`` as its kind's view (:meth:`Event.as_typed`); an unexpected kind is an ``Unknown``."""
    view = VIEWS.get(event.kind, Unknown)
    fields = view._fields
    if view is Unknown and event.kind != "unknown":
        return Unknown("unknown", *(getattr(event, name) for name in fields[1:]))
    return view(*(getattr(event, name) for name in fields))


__all__ = [
    "VIEWS",
    "Graduation",
    "Launch",
    "Migration",
    "Price",
    "TokenEnriched",
    "Trade",
    "TypedEvent",
    "Unknown",
    "view_of",
]
