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

Fields a provider may leave out stay ``Optional``, as in ``Event``. The views are frozen
dataclasses made on demand (keyword patterns in ``match``; the fields shared by several kinds
are declared once, in the private bases): the flat ``Event`` stays what the client delivers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol


@dataclass(frozen=True, kw_only=True, slots=True)
class _Common:
    """What every event has (see :class:`~pumpsync.Event`)."""

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


@dataclass(frozen=True, kw_only=True, slots=True)
class _Token(_Common):
    """A token's metadata, where the provider gives it."""

    name: str | None
    symbol: str | None
    creator: str | None
    uri: str | None
    image: str | None
    description: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Curve(_Token):
    """A token on its bonding curve: progress in percent, SOL raised, market cap and price in SOL."""

    bonding_curve_progress: float | None
    sol_raised: float | None
    market_cap_sol: float | None
    price_sol: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Launch(_Curve):
    """A token launch (``kind == "new_token"``): the token, its curve and the creator's first buy."""

    kind: Literal["new_token"] = "new_token"
    initial_buy_tokens: float | None
    initial_buy_sol: float | None
    virtual_sol_reserves: float | None
    virtual_token_reserves: float | None
    pool: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenEnriched(_Curve):
    """More about a launched token (``kind == "token_enriched"``): metadata and curve figures."""

    kind: Literal["token_enriched"] = "token_enriched"


@dataclass(frozen=True, kw_only=True, slots=True)
class Trade(_Common):
    """A buy or a sell (``kind == "trade"``) on the bonding curve or, after migration, the token's
    PumpSwap pool (``venue``); amounts in SOL (or the quote token) and whole tokens."""

    kind: Literal["trade"] = "trade"
    side: Literal["buy", "sell"] | None
    sol_amount: float | None
    token_amount: float | None
    trader: str | None
    price_sol: float | None
    market_cap_sol: float | None
    creator: str | None  # the token's creator, where the provider gives it with the trade
    venue: Literal["curve", "pumpswap"] | None  # the bonding curve, or the token's PumpSwap pool


@dataclass(frozen=True, kw_only=True, slots=True)
class Graduation(_Token):
    """The bonding curve is complete (``kind == "graduation"``); liquidity in SOL."""

    kind: Literal["graduation"] = "graduation"
    trader: str | None  # who completed the curve, where the provider says
    liquidity_sol: float | None
    time_to_graduate_s: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration(_Common):
    """The token's liquidity moved to an AMM pool (``kind == "migration"``); liquidity in SOL."""

    kind: Literal["migration"] = "migration"
    trader: str | None  # who ran the migration, where the provider says
    liquidity_sol: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Price(_Common):
    """A token's price (``kind == "price"``): SOL and USD per whole token, market cap in USD."""

    kind: Literal["price"] = "price"
    price_sol: float | None
    price_usd: float | None
    market_cap_usd: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Unknown(_Common):
    """A JSON object the provider's dialect did not recognise (``kind == "unknown"``): see ``raw``."""

    kind: Literal["unknown"] = "unknown"


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


# Each view's field names but ``kind`` (its class sets that), read once.
_FIELDS = {view: tuple(f.name for f in fields(view) if f.name != "kind") for view in VIEWS.values()}


class _Flat(Protocol):
    """What :func:`view_of` reads of a :class:`~pumpsync.Event` (its kind; the rest by name): so that
    this module needs nothing of ``pumpsync.events``, which imports it (``Event.as_typed``)."""

    @property
    def kind(self) -> str: ...


def view_of(event: _Flat) -> TypedEvent:
    """``event`` as its kind's view (:meth:`Event.as_typed`); an unexpected kind is an ``Unknown``."""
    view = VIEWS.get(event.kind, Unknown)
    return view(**{name: getattr(event, name) for name in _FIELDS[view]})


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
