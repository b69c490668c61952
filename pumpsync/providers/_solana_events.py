"""The pump.fun program's and PumpSwap's events as pumpsync events: a transaction's log lines
decoded (``decode_logs``), normalized (``normalize``), filtered by channel; layout drift counted.

Sans-I/O and shared by every on-chain source: the live ``logsNotification`` dialect, the
``getTransaction`` gap recovery, and any transaction stream (``_solana_tx.decode_transaction``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pumpsync.errors import ConfigurationError
from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, TRADE, Event
from pumpsync.providers._borsh import PUMP, PUMP_AMM, Decoded, decode_program_data
from pumpsync.providers._decode_drift import DRIFT
from pumpsync.providers._pumpswap_pools import FROM_MIGRATION, POOLS, WSOL_MINT, PoolBook
from pumpsync.providers._solana_logs import scan
from pumpsync.providers.base import Dropped, Malformed, Output

PROGRAM_ID = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMPSWAP_PROGRAM_ID = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"  # the AMM a graduated coin trades on
PROGRAMS = {PROGRAM_ID: PUMP, PUMPSWAP_PROGRAM_ID: PUMP_AMM}
SYSTEM_PROGRAM = "11111111111111111111111111111111"  # the quote mint of SOL-paired coins
CHANNELS = ("creations", "trades", "graduations")
FILTERS: dict[str, tuple[str, ...]] = {
    "creations": ("mints", "wallets"),
    # pools: "graduated" (default: PumpSwap pools a pump.fun graduation created) or "all" PumpSwap pools
    "trades": ("mints", "wallets", "minSol", "side", "pools"),
    "graduations": ("mints", "wallets"),
}


LAMPORTS_PER_SOL = 1_000_000_000
TOKEN_UNITS = 1_000_000  # pump.fun tokens have 6 decimals

# Why a notification (or a part of one) gave no event; bounded, they become metric labels.
FAILED_TX = "failed_tx"
LOG_TRUNCATED = "log_truncated"
UNKNOWN_SUBSCRIPTION = "unknown_subscription"
REASONS = (FAILED_TX, LOG_TRUNCATED, "unknown_event", "undecodable", UNKNOWN_SUBSCRIPTION)
# (the layout drift of events that were still delivered is counted apart: pumpsync_decode_drift_total)
# An event of the program's IDL that pumpsync does not map (ExtendAccountEvent comes with every launch):
# counted as left out on purpose, not as malformed.
UNMAPPED = Dropped("unmapped_event")
# Fees kept in a curve or a pool, paid out (SweepBondingCurveFeeEvent, SweepPoolFeeEvent): not trades.
FEE_PAYOUT = Dropped("fee_payout")
# A PumpSwap trade in a pool that no graduation created (the "pools" filter is not "all").
OTHER_POOL = Dropped("other_pool")
# A PumpSwap trade in a pool whose mint is not known yet (it graduated before this process saw it).
UNKNOWN_POOL = Dropped("unknown_pool")
PUMPSWAP_POOLS = ("graduated", "all")

CURVE = "curve"
PUMPSWAP = "pumpswap"
# The pump program's bonding curve at launch (program constants since 2024; SOURCES.md): what a launch
# whose CreateEvent predates the reserves fields started with.
INITIAL_VIRTUAL_TOKEN_RESERVES = 1_073_000_000_000_000
INITIAL_VIRTUAL_SOL_RESERVES = 30_000_000_000

_CHANNEL_OF = {
    "CreateEvent": "creations",
    "TradeEvent": "trades",
    "PostCompleteBuyEvent": "trades",
    "BuyEvent": "trades",
    "SellEvent": "trades",
}
_FEE_PAYOUTS = frozenset({"SweepBondingCurveFeeEvent", "SweepPoolFeeEvent"})
_MULTI_HOP = "multi_hop_swap"
_MULTI_HOP_LINE = "Program log: Instruction: MultiHopSwap"


# ---------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filter:
    """One channel's local filter, compiled."""

    mints: frozenset[str] | None = None
    wallets: frozenset[str] | None = None
    min_sol: float | None = None
    side: str | None = None
    all_pools: bool = False  # PumpSwap trades of any pool, not only graduation pools

    def admits(self, event: Event) -> bool:
        if self.mints is not None and event.mint not in self.mints:
            return False
        if self.wallets is not None and event.trader not in self.wallets and event.creator not in self.wallets:
            return False
        if self.min_sol is not None and (event.sol_amount is None or event.sol_amount < self.min_sol):
            return False
        return self.side is None or event.side == self.side


def _addresses(channel: str, name: str, value: Any) -> frozenset[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple, set, frozenset)) or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError("channels", f"filter {name!r} of {channel!r} must be an address or a list of them")
    return frozenset(values)


def compile_filter(channel: str, filters: Mapping[str, Any]) -> Filter:
    """A channel's filters, checked; ``ConfigurationError`` naming an unknown key or a bad value."""
    known = FILTERS.get(channel)
    if known is None:
        raise ConfigurationError("channels", f"unknown solana channel {channel!r} (one of {', '.join(CHANNELS)})")
    for key in filters:
        if key not in known:
            raise ConfigurationError(
                "channels", f"unknown filter {key!r} for solana channel {channel!r} (one of {', '.join(known)})"
            )
    mints = filters.get("mints")
    wallets = filters.get("wallets")
    min_sol = filters.get("minSol")
    side = filters.get("side")
    pools = filters.get("pools", "graduated")
    if pools not in PUMPSWAP_POOLS:
        raise ConfigurationError("channels", f"filter 'pools' of {channel!r} must be 'graduated' or 'all'")
    if min_sol is not None and (
        isinstance(min_sol, bool) or not isinstance(min_sol, (int, float)) or not math.isfinite(min_sol) or min_sol < 0
    ):
        raise ConfigurationError("channels", f"filter 'minSol' of {channel!r} must be a number >= 0")
    if side is not None and side not in ("buy", "sell"):
        raise ConfigurationError("channels", f"filter 'side' of {channel!r} must be 'buy' or 'sell'")
    return Filter(
        None if mints is None else _addresses(channel, "mints", mints),
        None if wallets is None else _addresses(channel, "wallets", wallets),
        None if min_sol is None else float(min_sol),
        side,
        pools == "all",
    )


def compile_filters(subscriptions: Mapping[str, Mapping[str, Any]]) -> dict[str, Filter]:
    return {channel: compile_filter(channel, filters) for channel, filters in subscriptions.items()}


# ---------------------------------------------------------------- events


def _sol(lamports: Any, sol_quoted: bool) -> float | None:
    return lamports / LAMPORTS_PER_SOL if sol_quoted and type(lamports) is int else None


def _price(sol: float | None, tokens: float | None) -> float | None:
    return sol / tokens if sol is not None and tokens else None


# An event's common fields: mint, signature, slot, timestamp, received_at, connection, backfill, raw.
_Common = tuple[str | None, str | None, int | None, int | None, int, int, bool, dict[str, Any]]


# A trade built positionally (Event(...) with keywords costs twice as much on the reader's path):
# every field at its default, then the common ones (Event's first ten) and the trade's by position.
_BLANK = [Event._field_defaults.get(name) for name in Event._fields]
_CHANNEL, _SIDE, _SOL, _TOKENS, _TRADER, _PRICE, _CREATOR, _VENUE = map(
    Event._fields.index, ("channel", "side", "sol_amount", "token_amount", "trader", "price_sol", "creator", "venue")
)


def _trade(
    common: _Common,
    buy: bool,
    sol: float | None,
    tokens: float,
    trader: str,
    price: float | None,
    creator: str | None,
    venue: str,
) -> Event:
    values = _BLANK.copy()
    values[:10] = (TRADE, "solana", *common)
    values[_CHANNEL] = "trades"
    values[_SIDE] = "buy" if buy else "sell"
    values[_SOL], values[_TOKENS], values[_TRADER], values[_PRICE] = sol, tokens, trader, price
    values[_CREATOR], values[_VENUE] = creator, venue
    return Event._make(values)


def normalize(
    decoded: Decoded,
    signature: str | None,
    slot: int | None,
    received_at: int,
    connection: int,
    backfill: bool,
    mint: str | None = None,
) -> Event:
    """A decoded program event as a normalized ``Event``; ``raw`` holds every decoded field (and
    ``decode_drift`` where the layout did not fit). ``mint``: a PumpSwap trade's, from its pool."""
    fields = decoded.fields
    raw = {"event": decoded.event, **fields}
    if decoded.drift is not None:
        raw["decode_drift"] = decoded.drift
    seconds = fields.get("timestamp")
    timestamp = seconds * 1000 if type(seconds) is int else None
    mint = mint or fields.get("mint") or fields.get("base_mint")
    common: _Common = (mint, signature, slot, timestamp, received_at, connection, backfill, raw)
    name = decoded.event
    # Quote fields are absent in older layouts (SOL, by then) and unknown when the tail drifted.
    quote = fields.get("quote_mint", None if decoded.drift is not None else SYSTEM_PROGRAM)
    if name == "TradeEvent" or name == "PostCompleteBuyEvent":
        return _curve_trade(common, name, fields, quote == SYSTEM_PROGRAM)
    if name == "BuyEvent" or name == "SellEvent":
        return _pool_trade(common, name == "BuyEvent", fields, quote)
    if name == "CreateEvent":
        return _launch(common, decoded, quote == SYSTEM_PROGRAM)
    # CompleteEvent: the curve is full (graduation); CompletePumpAmmMigrationEvent: its pool is live
    # (migration). Two kinds, because a mint has one of each and users act on either.
    return Event(
        MIGRATION if name == "CompletePumpAmmMigrationEvent" else GRADUATION,
        "solana",
        *common,
        "graduations",
        trader=fields.get("user"),
        liquidity_sol=_sol(fields.get("sol_amount"), quote == SYSTEM_PROGRAM),
    )


def _curve_trade(common: _Common, name: str, fields: dict[str, Any], sol_quoted: bool) -> Event:
    """A TradeEvent (or a PostCompleteBuyEvent without its trade): the bonding curve's trade."""
    if name == "TradeEvent":
        buy, lamports, units = fields["is_buy"], fields["sol_amount"], fields["token_amount"]
    else:
        buy, lamports, units = True, fields.get("quote_in"), fields.get("base_out", 0)
    sol = lamports / LAMPORTS_PER_SOL if sol_quoted and type(lamports) is int else None
    tokens = units / TOKEN_UNITS
    price = None
    if sol_quoted:
        virtual_sol = fields.get("virtual_sol_reserves")
        virtual_tokens = fields.get("virtual_token_reserves")
        if virtual_sol is not None and virtual_tokens:  # the curve's price after this trade
            price = (virtual_sol / LAMPORTS_PER_SOL) / (virtual_tokens / TOKEN_UNITS)
        else:
            price = _price(sol, tokens)
    return _trade(common, buy, sol, tokens, fields["user"], price, fields.get("creator"), CURVE)


def _pool_trade(common: _Common, buy: bool, fields: dict[str, Any], quote: str | None) -> Event:
    """A PumpSwap Buy/SellEvent (``common`` carries the mint, from the pool)."""
    # What the user paid (buy, fees included) or received (sell, fees taken): their side of it.
    amount = fields["user_quote_amount_in"] if buy else fields["user_quote_amount_out"]
    tokens = (fields["base_amount_out"] if buy else fields["base_amount_in"]) / TOKEN_UNITS
    sol_quoted = quote is None or quote == SYSTEM_PROGRAM or quote == WSOL_MINT
    sol = _sol(amount, sol_quoted)
    # Price from the pool's effective reserves (the quote vault plus the signed virtual quote
    # reserves of v2 pools), as the event reports them (before the trade: PumpSwap's convention).
    base = fields["pool_base_token_reserves"]
    effective = fields["pool_quote_token_reserves"] + fields.get("virtual_quote_reserves", 0)
    price = (effective / LAMPORTS_PER_SOL) / (base / TOKEN_UNITS) if sol_quoted and base and effective > 0 else None
    return _trade(common, buy, sol, tokens, fields["user"], price, fields.get("coin_creator"), PUMPSWAP)


def _launch(common: _Common, decoded: Decoded, sol_quoted: bool) -> Event:
    fields, raw = decoded.fields, common[7]
    # A holder-reward coin's CreateEvent names a pump.fun-controlled address as ``creator``; the
    # developer users mean is its ``user`` (raw keeps both).
    holder_reward = fields.get("is_holder_reward") is True
    virtual_sol = fields.get("virtual_sol_reserves")
    virtual_tokens = fields.get("virtual_token_reserves")
    if virtual_sol is None and "timestamp" in fields and decoded.drift is None:
        # A layout before the reserves were in the event: every curve then began at the constants.
        virtual_sol, virtual_tokens = INITIAL_VIRTUAL_SOL_RESERVES, INITIAL_VIRTUAL_TOKEN_RESERVES
        raw["reserves_from"] = "program_constants"
    vsol = _sol(virtual_sol, sol_quoted)
    vtokens = virtual_tokens / TOKEN_UNITS if type(virtual_tokens) is int and vsol is not None else None
    return Event(
        NEW_TOKEN,
        "solana",
        *common,
        "creations",
        name=fields.get("name"),
        symbol=fields.get("symbol"),
        creator=(fields.get("user") if holder_reward else fields.get("creator")) or fields.get("user"),
        uri=fields.get("uri"),
        price_sol=_price(vsol, vtokens),
        virtual_sol_reserves=vsol,
        virtual_token_reserves=vtokens,
        pool="pump",
    )


def _join_post_complete(events: list[tuple[Decoded, Event]], post: Decoded, event: Event) -> bool:
    """A v3 buy that completed the curve: its TradeEvent (the curve part), then CompleteEvent, then
    PostCompleteBuyEvent (the part the future pool filled). The trade users see is the buyer's whole
    buy: both parts added; ``raw["post_complete_buy"]`` keeps the second. False when no buy of that
    buyer and mint came before it in the transaction (then it is a trade of its own)."""
    for i in range(len(events) - 1, -1, -1):
        decoded, trade = events[i]
        if decoded.event == "TradeEvent" and trade.side == "buy" and trade.mint == event.mint:
            if trade.trader != event.trader or "post_complete_buy" in trade.raw:
                continue
            raw = {**trade.raw, "post_complete_buy": post.fields}
            # Added as integers (lamports, token units), then scaled: no float drift.
            lamports = trade.raw["sol_amount"] + post.fields["quote_in"]
            joined = trade._replace(
                raw=raw,
                sol_amount=lamports / LAMPORTS_PER_SOL if trade.sol_amount is not None else None,
                token_amount=(trade.raw["token_amount"] + post.fields["base_out"]) / TOKEN_UNITS,
            )
            events[i] = (decoded, joined)
            return True
    return False


def decode_logs(
    logs: list[Any],
    signature: str | None,
    slot: int | None,
    received_at: int,
    connection: int,
    backfill: bool,
    filters: Mapping[str, Filter],
    out: list[Output],
    pools: PoolBook | None = None,
) -> bool:
    """Append the events of one successful transaction's log lines (and ``Malformed`` reasons) to
    ``out``; only lines the pump program or PumpSwap wrote count. Return whether the log was truncated."""
    pools = POOLS if pools is None else pools
    decoded_events: list[tuple[Decoded, Event]] = []
    # The lines that matter (events, the cut) found at C speed, each with the program that wrote it
    # (walking back from it, not tracking every line of every program): _solana_logs.
    lines, truncated = scan(logs)
    for data, writer in lines:
        program = PROGRAMS.get(writer) if writer is not None else PUMP
        if program is None:
            continue  # another program's event (a wrapper, an aggregator)
        decoded = decode_program_data(data, program)
        if decoded is None:
            out.append(UNMAPPED)
        elif isinstance(decoded, str):
            out.append(Malformed(decoded))
        else:
            if decoded.drift is not None:
                DRIFT.note(decoded.event, decoded.drift)
            _collect(decoded, signature, slot, received_at, connection, backfill, pools, decoded_events, out)
    multi_hop = bool(decoded_events) and _MULTI_HOP_LINE in logs
    for decoded, event in decoded_events:
        if multi_hop or decoded.fields.get("ix_name") == _MULTI_HOP:
            event = event._replace(raw={**event.raw, "multi_hop": True})  # one hop of a multi-hop swap
        accept = filters.get(_CHANNEL_OF.get(decoded.event, "graduations"))
        if accept is None:
            continue
        if decoded.event in ("BuyEvent", "SellEvent") and not accept.all_pools and not event.raw.get("graduation_pool"):
            out.append(OTHER_POOL)
            continue
        if accept.admits(event):
            out.append(event)
    if truncated:
        out.append(Malformed(LOG_TRUNCATED))
    return truncated


def _collect(
    decoded: Decoded,
    signature: str | None,
    slot: int | None,
    received_at: int,
    connection: int,
    backfill: bool,
    pools: PoolBook,
    events: list[tuple[Decoded, Event]],
    out: list[Output],
) -> None:
    """One decoded event into ``events`` (in log order), or a reason into ``out``."""
    name = decoded.event
    fields = decoded.fields
    if name in _FEE_PAYOUTS:
        out.append(FEE_PAYOUT)
        return
    if name == "CreatePoolEvent":
        pool, base, quote = fields.get("pool"), fields.get("base_mint"), fields.get("quote_mint")
        index, creator = fields.get("index"), fields.get("creator")
        if isinstance(pool, str) and isinstance(base, str) and isinstance(quote, str):
            # A graduation's pool: index 0, the pump program's pool authority as creator (checked).
            pools.learn_created(pool, base, quote, index if type(index) is int else -1, str(creator))
        out.append(UNMAPPED)
        return
    mint = None
    if name == "BuyEvent" or name == "SellEvent":
        known = pools.get(fields["pool"])
        if known is None:
            out.append(UNKNOWN_POOL)
            return
        mint = known[0]
        if known[2] is not None:  # the event has no quote mint: the pool's, where known
            decoded = decoded._replace(fields={**fields, "quote_mint": known[2]})
    event = normalize(decoded, signature, slot, received_at, connection, backfill, mint)
    if name == "BuyEvent" or name == "SellEvent":
        assert known is not None
        event = event._replace(raw={**event.raw, "mint": mint, "graduation_pool": known[1]})
    elif name == "CompletePumpAmmMigrationEvent":
        pool = fields.get("pool")
        if isinstance(pool, str) and event.mint is not None:
            # the pump program names its graduation's pool
            pools.learn(pool, event.mint, graduated=True, quote=fields.get("quote_mint"), how=FROM_MIGRATION)
    elif name == "PostCompleteBuyEvent" and _join_post_complete(events, decoded, event):
        return  # added to its trade
    events.append((decoded, event))
