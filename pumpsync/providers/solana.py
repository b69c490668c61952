"""The pump.fun program's own events, from any Solana RPC node (JSON-RPC ``logsSubscribe``).

- Wire: JSON-RPC 2.0 over one WebSocket. ``logsSubscribe`` with ``mentions`` the program; the
  reply's ``result`` is the subscription id that ``logsNotification`` frames carry;
  ``logsUnsubscribe`` on close. No application heartbeat: WebSocket ping frames keep it open.
- One subscription serves every channel (``creations``, ``trades``, ``graduations``); channels
  and their filters are applied here, locally.
- Each ``Program data:`` line the pump program writes in a successful transaction is one Anchor
  event, decoded by the layout table of ``_borsh``. Failed transactions, ``Log truncated`` lines,
  unknown discriminators and undecodable data are counted (``Malformed`` reasons), never raised.
- Key optional: a node's key usually sits in its URL (``?api-key=``, or a path segment).
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pumpsync._secrets import ApiKey
from pumpsync._version import __version__
from pumpsync.errors import ConfigurationError
from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, TRADE, Event
from pumpsync.options import ProviderOptions, option
from pumpsync.providers._borsh import DRIFT_REASONS, PUMP, PUMP_AMM, Decoded, decode_program_data
from pumpsync.providers.base import (
    AuthenticationError,
    ClosePolicy,
    Dialect,
    Dropped,
    Fatal,
    Handshake,
    Malformed,
    Notice,
    Output,
    PlanError,
    Reconnect,
    Refetch,
    Reply,
    Subscribed,
    Subscription,
    Tick,
    opt_int,
    opt_slot,
    opt_str,
)
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import HistorySource, ProviderSpec

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

PROGRAM_ID = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMPSWAP_PROGRAM_ID = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"  # the AMM a graduated coin trades on
PROGRAMS = {PROGRAM_ID: PUMP, PUMPSWAP_PROGRAM_ID: PUMP_AMM}
SYSTEM_PROGRAM = "11111111111111111111111111111111"  # the quote mint of SOL-paired coins
DEFAULT_URL = "wss://api.mainnet-beta.solana.com"
CHANNELS = ("creations", "trades", "graduations")
COMMITMENTS = ("processed", "confirmed", "finalized")
# confirmed: voted on by a supermajority, so practically never rolled back (processed shows events of
# forks that are then dropped: trades that never happened), yet ~13 s ahead of finalized; and it is
# the lowest commitment getSignaturesForAddress / getTransaction accept, so live and history agree.
DEFAULT_COMMITMENT = "confirmed"
MAX_GAP_TRANSACTIONS = 2000  # getTransaction calls one gap may make (beyond: counted as lost)
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

_DATA = "Program data: "
_LOG = "Program log: "
_CHANNEL_OF = {
    "CreateEvent": "creations",
    "TradeEvent": "trades",
    "PostCompleteBuyEvent": "trades",
    "BuyEvent": "trades",
    "SellEvent": "trades",
}
_FEE_PAYOUTS = frozenset({"SweepBondingCurveFeeEvent", "SweepPoolFeeEvent"})
_MULTI_HOP = "multi_hop_swap"

# JSON-RPC error codes (standard, and those Solana nodes and RPC providers use).
_RATE_LIMIT_CODES = frozenset({429, -32429, -32005})
_AUTH_CODES = frozenset({401, 403, -32401, -32403})
_REFUSED_CODES = frozenset({-32601, -32602})  # method not found (refused by the node or its plan), bad params
_REFUSAL_WORDS = re.compile(r"\b(?:not allowed|not supported|not available|disabled|plan|upgrade)\b")


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


# ---------------------------------------------------------------- layout drift

log = logging.getLogger("pumpsync.solana")
_DRIFT_EVENTS = (
    "CreateEvent",
    "TradeEvent",
    "CompleteEvent",
    "CompletePumpAmmMigrationEvent",
    "PostCompleteBuyEvent",
    "SweepBondingCurveFeeEvent",
    "BuyEvent",
    "SellEvent",
    "CreatePoolEvent",
    "SweepPoolFeeEvent",
)
_WARN_EVERY_S = 3600.0


class DecodeDrift:
    """Events whose layout did not fit (or was longer than the newest known): counted by (event,
    reason) for ``pumpsync_decode_drift_total``, and one warning per event kind and hour. Process-wide:
    the program is the same for every connection. Never calls out while holding its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._warned: dict[str, float] = {}

    def note(self, event: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            key = (event, reason)
            self._counts[key] = self._counts.get(key, 0) + 1
            last = self._warned.get(event)
            warn = last is None or now - last >= _WARN_EVERY_S
            if warn:
                self._warned[event] = now
        if warn:
            log.warning(
                "the pump.fun program's %s no longer fits the layout pumpsync %s knows (%s): delivered with "
                "the fields that are certain; the program has changed, a newer pumpsync may know it",
                event,
                __version__,
                reason,
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """Every known (event, reason), at 0 where none was seen (a snapshot)."""
        with self._lock:
            seen = dict(self._counts)
        out = {(event, reason): 0 for event in _DRIFT_EVENTS for reason in DRIFT_REASONS}
        out.update(seen)
        return out


DRIFT = DecodeDrift()


class DecodeDriftCollector:
    """``pumpsync_decode_drift_total{event, reason}``: events of the on-chain programs whose layout did
    not fit (delivered with what is certain) or was longer than the newest known; every label at 0."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "pumpsync_decode_drift",
            "On-chain events whose layout did not fit the one this pumpsync knows, by event and reason",
            labels=["event", "reason"],
        )
        for (event, reason), n in sorted(DRIFT.counts().items()):
            family.add_metric([event, reason], n)
        yield family


# ---------------------------------------------------------------- PumpSwap pools


class PoolBook:
    """PumpSwap pool -> (mint, created by a graduation), learned from the pump program's migration
    event and PumpSwap's CreatePoolEvent. Bounded (least recently used out); thread-safe (the live
    dialect and gap recovery share it); no call out under the lock."""

    def __init__(self, limit: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._pools: OrderedDict[str, tuple[str, bool, str | None]] = OrderedDict()
        self._limit = limit

    def learn(self, pool: str, mint: str, graduated: bool, quote: str | None = None) -> None:
        """``quote``: the pool's quote mint where known (SOL, wrapped SOL, USDC...)."""
        with self._lock:
            known = self._pools.pop(pool, None)
            if known is not None:
                graduated = graduated or known[1]
                quote = quote or known[2]
            self._pools[pool] = (mint, graduated, quote)
            while len(self._pools) > self._limit:
                self._pools.popitem(last=False)

    def get(self, pool: str) -> tuple[str, bool, str | None] | None:
        with self._lock:
            found = self._pools.get(pool)
            if found is not None:
                self._pools.move_to_end(pool)
            return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._pools)


POOLS = PoolBook()


# ---------------------------------------------------------------- events


def _sol(lamports: Any, sol_quoted: bool) -> float | None:
    return lamports / LAMPORTS_PER_SOL if sol_quoted and type(lamports) is int else None


def _price(sol: float | None, tokens: float | None) -> float | None:
    return sol / tokens if sol is not None and tokens else None


# An event's common fields: mint, signature, slot, timestamp, received_at, connection, backfill, raw.
_Common = tuple[str | None, str | None, int | None, int | None, int, int, bool, dict[str, Any]]


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
    return Event(
        TRADE,
        "solana",
        *common,
        "trades",
        side="buy" if buy else "sell",
        sol_amount=sol,
        token_amount=tokens,
        trader=trader,
        price_sol=price,
        creator=creator,
        venue=venue,
    )


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
    sol_quoted = quote == SYSTEM_PROGRAM
    if name == "TradeEvent" or name == "PostCompleteBuyEvent":
        buy = name == "PostCompleteBuyEvent" or fields["is_buy"]
        sol = _sol(fields.get("sol_amount", fields.get("quote_in")), sol_quoted)
        tokens = fields.get("token_amount", fields.get("base_out", 0)) / TOKEN_UNITS
        price = None
        if sol_quoted:
            virtual_sol = fields.get("virtual_sol_reserves")
            virtual_tokens = fields.get("virtual_token_reserves")
            if virtual_sol is not None and virtual_tokens:  # the curve's price after this trade
                price = (virtual_sol / LAMPORTS_PER_SOL) / (virtual_tokens / TOKEN_UNITS)
            else:
                price = _price(sol, tokens)
        return _trade(common, buy, sol, tokens, fields["user"], price, fields.get("creator"), CURVE)
    if name == "BuyEvent" or name == "SellEvent":
        buy = name == "BuyEvent"
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
    if name == "CreateEvent":
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
    # CompleteEvent: the curve is full (graduation); CompletePumpAmmMigrationEvent: its pool is live
    # (migration). Two kinds, because a mint has one of each and users act on either.
    liquidity = fields.get("sol_amount")
    return Event(
        MIGRATION if name == "CompletePumpAmmMigrationEvent" else GRADUATION,
        "solana",
        *common,
        "graduations",
        trader=fields.get("user"),
        liquidity_sol=_sol(liquidity, sol_quoted),
    )


WSOL_MINT = "So11111111111111111111111111111111111111112"


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
    stack: list[str] = []  # the programs being invoked: a "Program data:" line belongs to the innermost
    decoded_events: list[tuple[Decoded, Event]] = []
    multi_hop = False
    truncated = False
    for line in logs:
        if type(line) is not str:
            continue
        if line.startswith(_DATA):
            program = PROGRAMS.get(stack[-1]) if stack else PUMP
            if program is None:
                continue  # another program's event (a wrapper, an aggregator)
            decoded = decode_program_data(line[len(_DATA) :], program)
            if decoded is None:
                out.append(UNMAPPED)
            elif isinstance(decoded, str):
                out.append(Malformed(decoded))
            else:
                if decoded.drift is not None:
                    DRIFT.note(decoded.event, decoded.drift)
                _collect(decoded, signature, slot, received_at, connection, backfill, pools, decoded_events, out)
        elif line.startswith(_LOG):
            if line == "Program log: Instruction: MultiHopSwap":
                multi_hop = True
        elif line.startswith("Program "):
            if line.endswith("]") and " invoke [" in line:
                stack.append(line[8 : line.find(" ", 8)])
            elif stack and (line.endswith(" success") or " failed" in line):
                stack.pop()
        elif line.startswith("Log truncated"):
            truncated = True
            break
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
        pool, base = fields.get("pool"), fields.get("base_mint")
        if isinstance(pool, str) and isinstance(base, str):
            # A graduation's pool: index 0, created in the same transaction as the migration (below).
            pools.learn(pool, base, graduated=False, quote=fields.get("quote_mint"))
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
            pools.learn(pool, event.mint, graduated=True, quote=fields.get("quote_mint"))
    elif name == "PostCompleteBuyEvent" and _join_post_complete(events, decoded, event):
        return  # added to its trade
    events.append((decoded, event))


# ---------------------------------------------------------------- the dialect


def commitment_of(config: Any) -> str:
    """The client's ``commitment`` option (a generic provider option), checked."""
    value = getattr(config, "commitment", None) or DEFAULT_COMMITMENT
    if value not in COMMITMENTS:
        raise ConfigurationError("commitment", f"{value!r} is not one of {', '.join(COMMITMENTS)}")
    return str(value)


class Solana(Dialect):
    provider = "solana"
    default_url = DEFAULT_URL
    channels = CHANNELS
    config_options = ("commitment",)
    close_policies: ClassVar[dict[int, ClosePolicy]] = {
        1000: ClosePolicy("normal closure"),
        1001: ClosePolicy("node going away"),
        1008: ClosePolicy("policy violation (rate limit or refused key)", rate_limited=True),
        1011: ClosePolicy("node error (temporary)"),
        1013: ClosePolicy("try again later", rate_limited=True),
    }

    def __init__(
        self, connection: int, subscriptions: list[Subscription], commitment: str | None = DEFAULT_COMMITMENT
    ) -> None:
        super().__init__(connection, subscriptions)
        commitment = commitment or DEFAULT_COMMITMENT
        if commitment not in COMMITMENTS:
            raise ConfigurationError("commitment", f"{commitment!r} is not one of {', '.join(COMMITMENTS)}")
        self.commitment = commitment
        self.filters = compile_filters({sub.channel: sub.filters for sub in subscriptions})
        self._next_id = 0
        self._pending: dict[int, str] = {}  # request id -> "subscribe" / "unsubscribe"
        self._subscription: int | None = None  # the node's id of our logsSubscribe
        # PumpSwap's logs (a graduated coin's trades; "mentions" takes one address): a second subscription
        self._amm_subscription: int | None = None
        self._amm_subscribing = False
        self._subscribing = False
        self._answered = False  # the node has answered a logsSubscribe in this session
        self._opened = False
        self._clock: int | None = None  # the node's id of our slotSubscribe (the data clock)

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        if key and auth == "query":
            return Handshake(with_query(url, "api-key", key.reveal()), {})  # Helius's spelling
        if key and auth == "header":
            return Handshake(url, {"Authorization": f"Bearer {key.reveal()}"})
        return Handshake(url, {})  # the key, if any, is already in the URL

    def _request(self, method: str, params: list[Any], purpose: str) -> str:
        self._next_id += 1
        self._pending[self._next_id] = purpose
        return json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})

    def _subscribe_frame(self) -> str:
        self._subscribing = True
        return self._request(
            "logsSubscribe", [{"mentions": [PROGRAM_ID]}, {"commitment": self.commitment}], "subscribe"
        )

    def _amm_frames(self) -> list[str]:
        """PumpSwap's logsSubscribe, once, while the trades channel is wanted."""
        if "trades" not in self.subscriptions or self._amm_subscription is not None or self._amm_subscribing:
            return []
        self._amm_subscribing = True
        params = [{"mentions": [PUMPSWAP_PROGRAM_ID]}, {"commitment": self.commitment}]
        return [self._request("logsSubscribe", params, "subscribe_amm")]

    def on_open(self) -> list[str]:
        self._opened = True
        self._amm_subscription, self._amm_subscribing = None, False
        # The data clock (SPEC.data_clock): slots advancing while no logsNotification comes means the
        # logs subscription is dead, however well the node answers pings. PumpSwap's logsSubscribe
        # follows once the pump.fun one is answered.
        frames = [self._subscribe_frame()] if self.subscriptions else []
        return [*frames, self._request("slotSubscribe", [], "clock")]

    def on_close(self) -> list[str]:
        """Frames to send before a deliberate close: the node frees the subscriptions at once."""
        frames = []
        if self._amm_subscription is not None:
            amm_id, self._amm_subscription = self._amm_subscription, None
            frames.append(self._request("logsUnsubscribe", [amm_id], "unsubscribe"))
        if self._subscription is None:
            return frames
        sub_id, self._subscription = self._subscription, None
        return [self._request("logsUnsubscribe", [sub_id], "unsubscribe"), *frames]

    @property
    def awaiting_subscription(self) -> bool:
        """A ``logsSubscribe`` was sent and not answered yet (a node may never answer)."""
        return self._subscribing

    @property
    def awaiting_hello(self) -> bool:
        # The session's first logsSubscribe unanswered within the hello timeout: the supervisor reconnects.
        return self._subscribing and not self._answered

    def on_hello_timeout(self) -> list[str]:
        return []  # nothing to send: still awaiting, so the session ends

    # -- channels: one node subscription serves them all
    def subscribe(self, sub: Subscription) -> list[str]:
        self.filters[sub.channel] = compile_filter(sub.channel, sub.filters)
        self.subscriptions[sub.channel] = sub
        if self._opened and self._subscription is None and not self._subscribing:
            return [self._subscribe_frame()]
        return self._amm_frames() if self._subscription is not None else []

    def unsubscribe(self, channel: str) -> list[str]:
        self.subscriptions.pop(channel, None)
        self.filters.pop(channel, None)
        if not self.subscriptions:
            return self.on_close()
        if channel == "trades" and self._amm_subscription is not None:
            amm_id, self._amm_subscription = self._amm_subscription, None
            return [self._request("logsUnsubscribe", [amm_id], "unsubscribe")]
        return []

    # -- frames
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        if obj.get("method") == "logsNotification":
            return self._notification(obj, received_at)
        if obj.get("method") == "slotNotification":
            params = obj.get("params")
            mine = isinstance(params, dict) and params.get("subscription") == self._clock
            return [Tick()] if mine and self._clock is not None else [Malformed(UNKNOWN_SUBSCRIPTION)]
        request = obj.get("id")
        if type(request) is int and request in self._pending:
            return self._reply(self._pending.pop(request), obj)
        if "id" in obj and ("result" in obj or "error" in obj):
            return [Malformed("protocol")]  # a reply to nothing we asked
        return self.unknown(obj, received_at, "unknown_type")

    def _notification(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        params = obj.get("params")
        if not isinstance(params, dict):
            return self.unknown(obj, received_at, "invalid_fields")
        sub_id = params.get("subscription")
        if sub_id is None or (sub_id != self._subscription and sub_id != self._amm_subscription):
            return [Malformed(UNKNOWN_SUBSCRIPTION)]  # an old subscription's last notifications
        result = params.get("result")
        context = result.get("context") if isinstance(result, dict) else None
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict) or not isinstance(context, dict):
            return self.unknown(obj, received_at, "invalid_fields")
        if value.get("err") is not None:
            return [Malformed(FAILED_TX)]  # its events never happened
        logs = value.get("logs")
        if not isinstance(logs, list):
            return [] if logs is None else self.unknown(obj, received_at, "invalid_fields")
        out: list[Output] = []
        signature = opt_str(value.get("signature"))
        slot = opt_slot(context.get("slot"))
        if decode_logs(logs, signature, slot, received_at, self.connection, False, self.filters, out) and signature:
            out.append(Refetch(signature, slot))  # the rest of its events: getTransaction's inner instructions
        return out

    def _reply(self, purpose: str, obj: dict[str, Any]) -> list[Output]:
        error = obj.get("error")
        if purpose == "clock" and error is None:
            self._clock = opt_int(obj.get("result"))
            return []
        if purpose == "subscribe_amm":
            self._amm_subscribing = False
            if error is None:
                amm_id = opt_int(obj.get("result"))
                if amm_id is None:
                    return [Reconnect("protocol", "logsSubscribe answered without a subscription id")]
                self._amm_subscription = amm_id
                if "trades" not in self.subscriptions:  # the channel went while we waited
                    self._amm_subscription = None
                    return [Reply(self._request("logsUnsubscribe", [amm_id], "unsubscribe"))]
                return [Subscribed("trades")]  # now every trade is live, PumpSwap's too
            return [self._subscribe_error(error)]
        if purpose == "subscribe":
            self._subscribing = False
            self._answered = True
            if error is None:
                sub_id = opt_int(obj.get("result"))
                if sub_id is None:
                    return [Reconnect("protocol", "logsSubscribe answered without a subscription id")]
                self._subscription = sub_id
                if not self.subscriptions:  # every channel went while we waited
                    return [Reply(frame) for frame in self.on_close()]
                # Trades are live once PumpSwap's subscription is answered too: a gap's fetch waits for
                # every channel to be live, so that nothing falls between its history and the live stream.
                amm = self._amm_frames()
                subscribed: list[Output] = [Subscribed(ch) for ch in self.subscriptions if not (amm and ch == "trades")]
                return subscribed + [Reply(frame) for frame in amm]
            return [self._subscribe_error(error)]
        if error is not None:
            code, message = _error_parts(error)
            return [Notice("rpc_error", f"{purpose} failed ({code}): {message}")]  # a bounded code: a metric label
        return []

    def _subscribe_error(self, error: Any) -> Output:
        code, message = _error_parts(error)
        lowered = message.lower()
        if code in _RATE_LIMIT_CODES or "rate limit" in lowered or "too many" in lowered:
            return Reconnect("rate_limited", f"solana node rate limit ({code}): {message}", rate_limited=True)
        if code in _AUTH_CODES or "api key" in lowered or "api-key" in lowered or "unauthorized" in lowered:
            return Fatal(
                AuthenticationError(f"solana node refused the key: {message}", provider="solana", error_code=str(code))
            )
        if code in _REFUSED_CODES or _REFUSAL_WORDS.search(lowered):
            return Fatal(
                PlanError(f"solana node refused logsSubscribe: {message}", provider="solana", error_code=str(code))
            )
        return Reconnect("subscribe_failed", f"solana node could not subscribe ({code}): {message}")


def _error_parts(error: Any) -> tuple[int | str, str]:
    if not isinstance(error, dict):
        return "error", str(error)[:200]
    code = opt_int(error.get("code"))
    message = opt_str(error.get("message")) or "no message"
    return (code if code is not None else "error"), message[:500]


def check_config(config: ClientConfig) -> None:
    """What the generic checks cannot know: the commitment, filter values, the gap ceiling."""
    commitment_of(config)
    compile_filters({sub.channel: sub.filters for sub in config.channels})
    ceiling = getattr(config, "max_gap_transactions", None)
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1):
        raise ConfigurationError("max_gap_transactions", f"{ceiling!r} is not a positive whole number")


def http_url(ws_url: str) -> str:
    """The node's HTTP JSON-RPC URL: the same host (and path, and key), ``wss`` -> ``https``."""
    if ws_url.startswith("wss://"):
        return "https://" + ws_url[len("wss://") :]
    if ws_url.startswith("ws://"):
        return "http://" + ws_url[len("ws://") :]
    return ws_url


def _history(config: ClientConfig) -> HistorySource:
    from pumpsync.providers.solana_history import make_history  # it imports this module

    return make_history(config)


@dataclass(frozen=True)
class SolanaOptions(ProviderOptions):
    """Solana's own options (``options=pumpsync.SolanaOptions(...)``)."""

    commitment: Literal["processed", "confirmed", "finalized"] = option(
        DEFAULT_COMMITMENT, "Commitment level of the logs subscription.", choices=COMMITMENTS
    )
    max_gap_transactions: int = option(MAX_GAP_TRANSACTIONS, "Transactions one gap recovery may fetch.", check="count")


SPEC = ProviderSpec(
    name="solana",
    summary="Solana: the pump.fun program's events from any RPC node (logsSubscribe, no key); getTransaction history",
    dialect=Solana,
    default_url=DEFAULT_URL,
    channels=CHANNELS,
    default_channels=CHANNELS,
    filters=FILTERS,
    auth_forms=("none", "query", "header"),
    default_auth="none",
    key_required=False,
    heartbeat="ws_ping",
    data_clock=True,  # slotSubscribe: slots advancing with no logsNotification = a dead subscription
    max_frame_size=32 * 1024 * 1024,
    history=_history,
    filter_reasons=(UNMAPPED.reason, FEE_PAYOUT.reason, OTHER_POOL.reason, UNKNOWN_POOL.reason),
    metrics=DecodeDriftCollector,
    malformed_reasons=REASONS,
    options=SolanaOptions,
    check=check_config,
)

__all__ = [
    "CHANNELS",
    "COMMITMENTS",
    "DEFAULT_COMMITMENT",
    "FILTERS",
    "PROGRAM_ID",
    "REASONS",
    "SPEC",
    "Filter",
    "Solana",
    "check_config",
    "commitment_of",
    "compile_filter",
    "decode_logs",
    "http_url",
    "normalize",
]
