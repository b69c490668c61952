"""Anaxer's records as events: a v1 payload or a document-form object, live (``anaxer``) or from
REST (``anaxer_history``). A leaf: the history imports it without importing the provider module
(which makes the history)."""

from __future__ import annotations

from typing import Any

from pumpsync.events import GRADUATION, NEW_TOKEN, PRICE, TRADE, Event
from pumpsync.providers.base import event_defaults_after, opt_int, opt_num, opt_str, ratio

SOL_MINT = "So11111111111111111111111111111111111111112"
_PAYLOAD_CHANNEL = {"swap": "trades", "created": "creations", "graduated": "graduations", "price": "prices"}
_AFTER_TRADE = event_defaults_after("price_sol")
_new_tuple = tuple.__new__
# A swap's ``source`` as the event's ``venue`` (other sources: not told), as ready-made tails.
_VENUES = {"pumpfun": "curve", "pump": "curve", "pumpswap": "pumpswap", "pump_amm": "pumpswap", "pump-amm": "pumpswap"}
_AFTER_TRADE_AT = {
    source: tuple(
        venue if name == "venue" else value
        for name, value in zip(Event._fields[-len(_AFTER_TRADE) :], _AFTER_TRADE, strict=True)
    )
    for source, venue in _VENUES.items()
}  # a trade's event: fields up to price_sol, then these


def _payload_channel(record: dict[str, Any]) -> str | None:
    kind = record.get("type")
    # A hostile "type" may be a list or an object: unhashable, so never a dict key.
    return _PAYLOAD_CHANNEL.get(kind) if type(kind) is str else None


def infer_channel(record: dict[str, Any]) -> str | None:
    """Which channel a record belongs to, from its payload type or, failing that, its fields."""
    channel = _payload_channel(record)
    if channel is not None:
        return channel
    if "swap" in record or "side" in record or "solAmount" in record:
        return "trades"
    if "liquiditySol" in record or "timeToGraduateSeconds" in record:
        return "graduations"
    if isinstance(record.get("price"), dict) or ("priceSol" in record and "name" not in record):
        return "prices"
    if "name" in record or "symbol" in record or "creator" in record:
        return "creations"
    return None


def normalize(
    record: dict[str, Any], channel: str | None, received_at: int, connection: int, backfill: bool = False
) -> Event | None:
    """An Anaxer record (a v1 payload or a document-form object, live or from REST) as an Event."""
    # The payload's own type beats a channel guessed from the subscriptions.
    kind = record.get("type")  # the hot path: _payload_channel() inlined
    channel = (_PAYLOAD_CHANNEL.get(kind) if type(kind) is str else None) or channel or infer_channel(record)
    slot = opt_int(record.get("slot"))
    if slot is None or slot < 0:  # see opt_slot()
        return None
    if channel == "trades":
        return _trade(record, slot, received_at, connection, backfill)
    if channel == "creations" or channel == "graduations":
        return _token(record, channel, slot, received_at, connection, backfill)
    if channel == "prices":
        return _price(record, slot, received_at, connection, backfill)
    return None


def _trade(record: dict[str, Any], slot: int, received_at: int, connection: int, backfill: bool) -> Event | None:
    signature = opt_str(record.get("signature"))
    if signature is None:
        return None
    mint = opt_str(record.get("mint"))
    side = opt_str(record.get("side"))
    sol = opt_num(record.get("solAmount"))
    tokens = opt_num(record.get("tokenAmount"))
    legs = record.get("swap")
    if isinstance(legs, dict) and (mint is None or side is None or sol is None or tokens is None):
        give, get = legs.get("from"), legs.get("to")
        if isinstance(give, dict) and isinstance(get, dict):
            if give.get("mint") == SOL_MINT:  # SOL in, tokens out: a buy
                side, mint = side or "buy", mint or opt_str(get.get("mint"))
                sol = sol if sol is not None else opt_num(give.get("uiAmount"))
                tokens = tokens if tokens is not None else opt_num(get.get("uiAmount"))
            else:
                side, mint = side or "sell", mint or opt_str(give.get("mint"))
                sol = sol if sol is not None else opt_num(get.get("uiAmount"))
                tokens = tokens if tokens is not None else opt_num(give.get("uiAmount"))
    if side not in ("buy", "sell"):
        side = None
    price = opt_num(record.get("priceSol"))
    if price is None:
        price = ratio(sol, tokens)
    head = (
        TRADE,
        "anaxer",
        mint,
        signature,
        slot,
        opt_int(record.get("timestamp")),
        received_at,
        connection,
        backfill,
        record,
        "trades",  # channel
        side,
        sol,  # sol_amount
        tokens,  # token_amount
        opt_str(record.get("wallet")) or opt_str(record.get("trader")),  # trader
        price,  # price_sol
    )
    source = record.get("source")
    tail = _AFTER_TRADE_AT.get(source, _AFTER_TRADE) if type(source) is str else _AFTER_TRADE
    return _new_tuple(Event, head + tail)  # positional, without _make's call and check: a third of keywords' cost


def _token(
    record: dict[str, Any], channel: str, slot: int, received_at: int, connection: int, backfill: bool
) -> Event | None:
    signature = opt_str(record.get("signature"))
    if signature is None:
        return None
    graduation = channel == "graduations"
    return Event(
        GRADUATION if graduation else NEW_TOKEN,
        "anaxer",
        opt_str(record.get("mint")),
        signature,
        slot,
        opt_int(record.get("timestamp")),
        received_at,
        connection,
        backfill,
        record,
        channel,
        name=opt_str(record.get("name")),
        symbol=opt_str(record.get("symbol")),
        creator=opt_str(record.get("creator")),
        uri=opt_str(record.get("uri")),
        liquidity_sol=opt_num(record.get("liquiditySol")) if graduation else None,
        time_to_graduate_s=opt_num(record.get("timeToGraduateSeconds")) if graduation else None,
    )


def _price(record: dict[str, Any], slot: int, received_at: int, connection: int, backfill: bool) -> Event | None:
    mint = opt_str(record.get("mint"))
    quote = record.get("price")
    quote = quote if isinstance(quote, dict) else {}
    price_sol = opt_num(record.get("priceSol"))
    if price_sol is None:
        price_sol = opt_num(quote.get("sol"))
    if mint is None or price_sol is None:
        return None
    return Event(
        PRICE,
        "anaxer",
        mint,
        None,
        slot,
        opt_int(record.get("timestamp")),
        received_at,
        connection,
        backfill,
        record,
        "prices",
        price_sol=price_sol,
        price_usd=opt_num(quote.get("usd")),
        market_cap_usd=opt_num(record.get("marketCapUsd")),
    )


__all__ = ["SOL_MINT", "infer_channel", "normalize"]
