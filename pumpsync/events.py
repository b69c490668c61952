"""Normalized events: one immutable type for every provider.

An ``Event`` is a ``NamedTuple``: immutable, cheap to build on the reader thread, and
compared by value. Fields a provider does not give are ``None``.

Kinds: ``new_token``, ``token_enriched``, ``trade`` (``side`` is ``"buy"`` or ``"sell"``),
``graduation`` (the bonding curve is complete), ``migration`` (its liquidity moved to an AMM pool),
``price``, ``unknown`` (a JSON object the dialect does not recognise; its
content is in ``raw``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple

if TYPE_CHECKING:
    from pumpsync.views import TypedEvent

# What ``Event.kind`` can be: a type checker flags ``event.kind == "trde"`` (mypy --strict).
EventKind = Literal["new_token", "token_enriched", "trade", "graduation", "migration", "price", "unknown"]

NEW_TOKEN: Final = "new_token"
TOKEN_ENRICHED: Final = "token_enriched"
TRADE: Final = "trade"
GRADUATION: Final = "graduation"
MIGRATION: Final = "migration"
PRICE: Final = "price"
UNKNOWN: Final = "unknown"

KINDS = (NEW_TOKEN, TOKEN_ENRICHED, TRADE, GRADUATION, MIGRATION, PRICE, UNKNOWN)

_COMMON_KEYS = (
    "kind",
    "provider",
    "mint",
    "signature",
    "slot",
    "timestamp",
    "received_at",
    "connection",
    "backfill",
    "raw",
    "channel",  # last: the keys before it kept their order when it was added
)
_REQUIRED_KEYS = ("kind", "provider", "received_at")
_TOKEN_KEYS = ("name", "symbol", "creator", "uri", "image", "description")
_CURVE_KEYS = ("bonding_curve_progress", "sol_raised", "market_cap_sol", "price_sol")
# A launch as it happened: the creator's first buy, the curve's virtual reserves, the launchpad.
_LAUNCH_KEYS = ("initial_buy_tokens", "initial_buy_sol", "virtual_sol_reserves", "virtual_token_reserves", "pool")
_TRADE_KEYS = ("side", "sol_amount", "token_amount", "trader", "price_sol", "market_cap_sol", "creator", "venue")
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    NEW_TOKEN: _TOKEN_KEYS + _CURVE_KEYS + _LAUNCH_KEYS,
    TOKEN_ENRICHED: _TOKEN_KEYS + _CURVE_KEYS,
    TRADE: _TRADE_KEYS,
    GRADUATION: (*_TOKEN_KEYS, "trader", "liquidity_sol", "time_to_graduate_s"),
    MIGRATION: ("trader", "liquidity_sol"),
    PRICE: ("price_sol", "price_usd", "market_cap_usd"),
    UNKNOWN: (),
}


class Event(NamedTuple):
    """One normalized event.

    Common fields: ``kind``, ``provider`` (``"openpump"``, ``"anaxer"``, ``"pumpportal"``...), ``mint``,
    ``signature``, ``slot`` (Solana slot or ``None``), ``timestamp`` (provider time, epoch ms,
    or ``None``), ``received_at`` (local epoch ms), ``connection`` (index of the connection
    that delivered it first), ``backfill`` (``True`` when it came from gap recovery over
    REST), ``raw`` (the provider's object, as received), ``channel`` (the subscription that
    carried it, e.g. Anaxer's ``"trades"``; ``None`` where the provider has no channels).

    Units: ``sol_amount``, ``sol_raised``, ``market_cap_sol``, ``liquidity_sol`` in SOL (not
    lamports); ``token_amount`` in whole tokens (decimals applied); ``price_sol`` in SOL per
    whole token; ``price_usd`` in USD per whole token; ``market_cap_usd`` in USD;
    ``bonding_curve_progress`` in percent (0-100); ``time_to_graduate_s`` in seconds.

    Launches (``new_token``) may also carry: ``initial_buy_tokens`` (whole tokens) and
    ``initial_buy_sol`` (SOL), the creator's first buy where the provider reports it with the
    launch (PumpPortal's ``initialBuy``/``solAmount``; on Solana it is a trade of its own);
    ``virtual_sol_reserves`` (SOL) and ``virtual_token_reserves`` (whole tokens), the bonding
    curve's virtual reserves as reported with the launch (PumpPortal: after the first buy;
    Solana's CreateEvent: before it), from which ``price_sol`` = SOL over tokens; and ``pool``,
    the launchpad as the provider names it (PumpPortal: ``"pump"``, ``"bonk"``).

    Trades carry ``venue``: ``"curve"`` (the pump.fun bonding curve) or ``"pumpswap"`` (a PumpSwap
    AMM pool, after graduation); ``None`` where the provider cannot tell.
    """

    kind: EventKind
    provider: str
    mint: str | None
    signature: str | None
    slot: int | None
    timestamp: int | None
    received_at: int
    connection: int
    backfill: bool
    raw: dict[str, Any]
    channel: str | None = None
    # trades
    side: str | None = None
    sol_amount: float | None = None
    token_amount: float | None = None
    trader: str | None = None
    price_sol: float | None = None
    # tokens
    name: str | None = None
    symbol: str | None = None
    creator: str | None = None
    uri: str | None = None
    image: str | None = None
    description: str | None = None
    bonding_curve_progress: float | None = None
    sol_raised: float | None = None
    market_cap_sol: float | None = None
    # graduations and prices
    liquidity_sol: float | None = None
    time_to_graduate_s: float | None = None
    price_usd: float | None = None
    market_cap_usd: float | None = None
    # launches (added last: positional construction of the fields above is unchanged)
    initial_buy_tokens: float | None = None
    initial_buy_sol: float | None = None
    virtual_sol_reserves: float | None = None
    virtual_token_reserves: float | None = None
    pool: str | None = None
    # where a trade happened: "curve" (the bonding curve) or "pumpswap" (a PumpSwap pool); None: not told
    venue: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data: the common keys, then the keys of this kind (``None`` where not given),
        then any other field that is set, so that ``Event.from_dict(e.to_dict()) == e`` always."""
        out = {key: getattr(self, key) for key in _COMMON_KEYS}
        for key in _KIND_KEYS.get(self.kind, ()):
            out[key] = getattr(self, key)
        for key, value in zip(self._fields, self, strict=True):
            if value is not None and key not in out:
                out[key] = value
        return out

    @property
    def identity(self) -> tuple[Any, ...] | None:
        """What makes this event unique, for de-duplication; ``None`` if it cannot be told.

        It is the same for the same on-chain event from any provider (it has no provider, slot
        or timestamp in it), so that several sources merge into one stream. Several events can
        share a signature (a launch and the creator's first buy in one transaction;
        ``new_token`` and ``token_enriched``), so the kind and the parties count too. A mint is
        launched once and graduates once: tokens go by kind and mint alone, which also matches
        a provider that sends no signature. See docs/multi-source.md for what cannot be matched.
        """
        kind = self.kind
        if kind == TRADE:
            if self.signature is None:
                return None
            return (kind, self.signature, self.mint, self.side, self.trader)
        if kind == PRICE:
            if self.mint is None or self.slot is None:
                return None
            return (kind, self.mint, self.slot, self.price_sol)
        if kind == UNKNOWN or self.mint is None:
            return None
        return (kind, self.mint)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event that :meth:`to_dict` (a JSONL line, the SQLite ``data`` column) describes.

        ``Event.from_dict(e.to_dict()) == e``. Keys this version does not know are ignored, and
        missing optional ones are ``None``, so files written by other versions still load.
        """
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise ValueError(f"not an event: no {', '.join(missing)}")
        fields: dict[str, Any] = {"mint": None, "signature": None, "slot": None, "timestamp": None}
        fields.update(connection=0, backfill=False, raw={})
        fields.update((key, data[key]) for key in cls._fields if key in data)
        return cls(**fields)

    def with_delivery(self, connection: int, backfill: bool) -> Event:
        """This event as delivered by ``connection`` (``backfill``: fetched by gap recovery)."""
        return self._replace(connection=connection, backfill=backfill)

    def as_typed(self) -> TypedEvent:
        """This event as its kind's own type (:class:`~pumpsync.Trade`, :class:`~pumpsync.Launch`, ...):
        only that kind's fields, so that a type checker narrows on ``kind`` or in a ``match``
        (see :mod:`pumpsync.views`)."""
        from pumpsync.views import view_of

        return view_of(self)


__all__ = ["KINDS", "Event", "EventKind"]
