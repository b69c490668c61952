"""The market view: every mint's figures from any stream of events, for a user's loop to read.

Concurrency: one writer (the thread calling :meth:`Market.update`, ``feed`` or iterating ``wrap``)
and any number of readers. One lock, ``Market._lock``, guards all state; the writer holds it while it
applies one event, a reader while it copies one snapshot (frozen objects, safe to keep). Nothing
is called out under it: the SOL/USD source is asked before the lock is taken, and closed candles
are handed over by :meth:`Market.closed_candles`, never pushed to a callback.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, TOKEN_ENRICHED, TRADE, Event
from pumpsync.market._candles import INTERVALS, LAMPORTS, SHORTEST, Candle, OrderKey, fill_gaps
from pumpsync.market._token import PUMPSWAP, UNIT, TokenState, event_ms, trade_identity
from pumpsync.market._view import TokenView

SolUsd = float | Callable[[], float | None] | None
MAX_TOKENS = 10_000
MAX_SEEN_PER_TOKEN = 100_000  # trade identities remembered per mint for de-duplication
_INF = math.inf
# the fast path reads a trade's fields by position (Event's positional order is kept: see events.py)
if Event._fields[2:7] != ("mint", "signature", "slot", "timestamp", "received_at") or Event._fields[11:16] != (
    "side",
    "sol_amount",
    "token_amount",
    "trader",
    "price_sol",
):  # pragma: no cover
    raise ImportError("pumpsync.market: Event's fields moved; the market's fast path reads them by position")
_SORTS = {
    "last_trade": lambda v: v.last_trade_ms or 0,
    "age": lambda v: -(v.age_s if v.age_s is not None else math.inf),
    "market_cap": lambda v: v.market_cap_sol or 0.0,
    "volume_1m": lambda v: v.w1m.volume_sol,
    "volume_5m": lambda v: v.w5m.volume_sol,
    "volume_1h": lambda v: v.w1h.volume_sol,
    "trades_5m": lambda v: v.w5m.trades,
    "holders": lambda v: v.holders,
    "progress": lambda v: v.progress or 0.0,
}
SORTS = tuple(_SORTS)


def _amount(value: Any) -> float:
    """A trade amount from outside: a finite, non-negative number, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"out of range: {number!r}")
    return number


def matches(
    view: TokenView,
    *,
    min_market_cap_usd: float | None = None,
    min_market_cap_sol: float | None = None,
    max_age_s: float | None = None,
    min_volume_5m_sol: float | None = None,
    min_holders: int | None = None,
    max_dev_share: float | None = None,
    max_first_slot_buyers: int | None = None,
    launched_only: bool = False,
) -> bool:
    """Whether ``view`` passes every filter given. An unknown figure fails a filter on it (no USD price:
    no market cap in USD; launch not seen: no age, no developer)."""
    if launched_only and view.launch is None:
        return False
    if min_market_cap_usd is not None and (view.market_cap_usd or 0.0) < min_market_cap_usd:
        return False
    if min_market_cap_sol is not None and (view.market_cap_sol or 0.0) < min_market_cap_sol:
        return False
    if max_age_s is not None and (view.age_s is None or view.age_s > max_age_s):
        return False
    if min_volume_5m_sol is not None and view.w5m.volume_sol < min_volume_5m_sol:
        return False
    if min_holders is not None and view.holders < min_holders:
        return False
    if max_dev_share is not None and (view.dev_share is None or view.dev_share >= max_dev_share):
        return False
    return max_first_slot_buyers is None or len(view.first_slot_buyers) <= max_first_slot_buyers


_FILTERS = frozenset(matches.__kwdefaults__ or ())


def _check_filters(filters: dict[str, Any]) -> None:
    unknown = sorted(set(filters) - _FILTERS)
    if unknown:
        raise TypeError(f"unknown filter {', '.join(unknown)}; filters: {', '.join(sorted(_FILTERS))}")


class Market:
    """Per-mint state, candles and signals from any stream of :class:`~pumpsync.Event`.

    ``max_tokens`` mints are tracked at most; past that the least recently traded one is forgotten
    (``stats()["evicted"]``). ``first_slots`` is N of "the buyers of the first N slots".
    ``sol_usd``: a fixed SOL/USD price, a function returning it (or None), e.g. a
    :class:`~pumpsync.market.PythSolUsd`, or None (every USD figure is then None).
    ``candle_queue``: how many closed candles :meth:`closed_candles` may hold for a consumer (a sink),
    the oldest dropped past it (``stats()["candles_dropped"]``); 0 (the default): no hand-over at all,
    which saves the writer the work (``candles()`` still has every kept candle).
    """

    def __init__(
        self, max_tokens: int = MAX_TOKENS, first_slots: int = 3, sol_usd: SolUsd = None, candle_queue: int = 0
    ) -> None:
        if max_tokens < 1 or first_slots < 1 or candle_queue < 0:
            raise ValueError("max_tokens and first_slots must be at least 1, candle_queue at least 0")
        self._queue_max = candle_queue
        self.max_tokens = max_tokens
        self.first_slots = first_slots
        self._sol_usd = sol_usd
        self._lock = threading.Lock()
        self._tokens: OrderedDict[str, TokenState] = OrderedDict()  # least recently traded first
        self._clock = 0  # newest event time seen, ms: the market's "now"
        self._open: dict[str, dict[str, int]] = {name: {} for name in INTERVALS}  # interval -> mint -> start
        self._closed: deque[Candle] = deque()
        self._applied = 0  # an attribute, not in _counts: counted for almost every event; events is the sum
        self._counts = dict.fromkeys(("duplicates", "ignored", "bad", "evicted", "candles_dropped"), 0)

    # -- the writer ------------------------------------------------------------------------

    def update(self, event: Event) -> bool:
        """Apply one event; False if it changed nothing (a duplicate, another kind, or bad: counted)."""
        lock = self._lock
        lock.acquire()  # not ``with``: its look-ups of __enter__ and __exit__ cost a third of a trade's checks
        try:
            applied = self._apply_trade(event) if event.kind == TRADE else self._apply(event)
            if applied:
                self._applied += 1
            else:
                self._counts["ignored"] += 1
            return applied
        except (ValueError, TypeError, AttributeError):
            self._counts["bad"] += 1
            return False
        finally:
            lock.release()

    def feed(self, events: Iterable[Event]) -> int:
        """Apply every event of ``events`` (a list, a recording, a client); returns how many changed something."""
        return sum(self.update(event) for event in events)

    def wrap(self, events: Iterable[Event]) -> Iterator[Event]:
        """Pass ``events`` through, applying each before it is yielded: ``for e in market.wrap(stream):``."""
        for event in events:
            self.update(event)
            yield event

    def _apply_trade(self, event: Event) -> bool:  # why long: the hot path, inline (calls cost here)
        """A trade, the common case, checked by exact types (what every dialect gives) and applied here,
        the same steps as :meth:`_apply`, :meth:`TokenState.trade` and :meth:`_trade` without their calls;
        any other trade (a new mint, a first creator, a missing signature, int or zero amounts, no price,
        bad input) goes through :meth:`_apply`, which checks everything. Rare parts (the developer, the
        first slots, the bars of a new second, the candle hand-over) go through the general methods."""
        mint, sig, slot, t_ms, received_at = event[2:7]  # slices: fewer steps than one attribute each
        side, sol, tokens, trader, price = event[11:16]
        if t_ms is None:
            t_ms = received_at
        creator = event.creator
        state = self._tokens.get(mint) if type(mint) is str else None
        if (
            state is None
            or (side != "buy" and side != "sell")
            or type(sol) is not float
            or type(tokens) is not float
            or type(price) is not float
            or not 0.0 < sol < _INF
            or not 0.0 < tokens < _INF
            or not 0.0 < price < _INF
            or type(t_ms) is not int
            or type(sig) is not str
            or (slot is not None and type(slot) is not int)
            or (trader is not None and type(trader) is not str)
            or (creator is not None and (type(creator) is not str or (creator and state.creator is None)))
        ):
            return self._apply(event)
        seen = state.seen  # TokenState.remember
        before = len(seen)
        identity = (sig, side, trader)  # trade_identity(event)
        seen.add(identity)
        if len(seen) == before:
            self._counts["duplicates"] += 1
            return False
        order = state.seen_order
        order.append(identity)
        if before >= state.max_seen:  # forget the oldest
            seen.discard(order.popleft())
        if t_ms > self._clock:
            self._advance(t_ms)
        buy = side == "buy"  # TokenState.trade, for a trade with a price
        key = (t_ms, slot or 0, sig)
        raw = (tokens * UNIT).__round__()  # round(), without its look-up of __round__
        lamports = (sol * LAMPORTS).__round__()
        venue = event.venue
        if trader is not None:
            balances = state.balances
            balances[trader] = balances.get(trader, 0) + (raw if buy else -raw)
        if buy:
            state.buys += 1
        else:
            state.sells += 1
        state.volume += lamports
        if venue == PUMPSWAP:
            state.pumpswap += 1
        else:
            state.net_curve += raw if buy else -raw
        last = state.last_key
        if last is None or key >= last:  # newest of all: newest with a price too (price_key <= last_key)
            state.last_key = state.price_key = key
            state.venue, state.price = venue, price
        else:
            last_priced = state.price_key
            if last_priced is not last and (last_priced is None or key >= last_priced):
                state.price_key, state.price = key, price
        dev = state.creator  # parties: nothing to do for most trades
        if trader is not None and (
            (buy and slot is not None) or trader == dev or (dev is None and state.pending is not None)
        ):
            state.parties(key, sig, slot, trader, buy, sol, tokens, venue, self.first_slots)
        self._tokens.move_to_end(state.mint)  # Market._trade
        candles = state.candles
        if t_ms - t_ms % SHORTEST != candles.hot_start or self._queue_max:
            if self._queue_max:
                self._candles(state, t_ms, key, price, lamports, buy)
            else:
                candles.add(t_ms, key, price, lamports, buy)
            return True
        bar = candles.hot  # the bar of this second, at hand: _Bar.add, inline
        assert bar is not None
        if key >= bar.close_key:
            bar.close_key = key
            bar.close = price
        elif key < bar.open_key:
            bar.open_key = key
            bar.open = price
        if price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.volume += lamports
        if buy:
            bar.buys += 1
        else:
            bar.sells += 1
        return True

    def _apply(self, event: Event) -> bool:
        kind, mint = event.kind, event.mint
        if kind not in (TRADE, NEW_TOKEN, TOKEN_ENRICHED, GRADUATION, MIGRATION) or not mint:
            return False
        if not isinstance(mint, str):
            raise TypeError("mint")
        if kind == TRADE:
            if event.side not in ("buy", "sell"):
                raise ValueError("side")
            sol, tokens = _amount(event.sol_amount or 0.0), _amount(event.token_amount or 0.0)
        else:  # checked before anything changes: a bad event is skipped whole
            for name in ("liquidity_sol", "bonding_curve_progress", "initial_buy_tokens", "initial_buy_sol"):
                if getattr(event, name) is not None:
                    _amount(getattr(event, name))
        t_ms = event_ms(event)
        if not isinstance(t_ms, int) or isinstance(t_ms, bool):
            raise TypeError("time")
        # what orders and keys the state: a wrong type here would break a reader later, not this event
        if event.slot is not None and (not isinstance(event.slot, int) or isinstance(event.slot, bool)):
            raise TypeError("slot")
        for name in ("signature", "trader", "creator"):
            if getattr(event, name) is not None and not isinstance(getattr(event, name), str):
                raise TypeError(name)
        state = self._tokens.get(mint)
        if state is None:
            state = self._tokens[mint] = TokenState(mint, MAX_SEEN_PER_TOKEN)
            self._evict()
        if kind == TRADE and not state.remember(trade_identity(event)):
            self._counts["duplicates"] += 1
            return False
        self._advance(t_ms)
        if kind == TRADE:
            if event.creator and state.creator is None:  # sources that name the creator with each trade
                state.token_info(event, self.first_slots)
            self._trade(state, event, t_ms, event.side == "buy", sol, tokens)
        elif kind in (NEW_TOKEN, TOKEN_ENRICHED):
            state.token_info(event, self.first_slots)
            if kind == NEW_TOKEN and event.initial_buy_tokens and event.creator and event.signature:
                self._first_buy(state, event)
        else:
            state.graduate(event)
        return True

    def _first_buy(self, state: TokenState, launch: Event) -> None:
        """The creator's first buy reported with the launch (PumpPortal): the trade it is, with the
        identity other sources give that trade (same signature, mint, side, trader), so it counts once."""
        tokens = _amount(launch.initial_buy_tokens)
        sol = _amount(launch.initial_buy_sol or 0.0)
        trade = Event(
            TRADE, launch.provider, launch.mint, launch.signature, launch.slot, launch.timestamp,
            launch.received_at, launch.connection, launch.backfill, {}, side="buy", sol_amount=sol,
            token_amount=tokens, trader=launch.creator, price_sol=sol / tokens if sol and tokens else None,
        )  # fmt: skip
        if state.remember(trade_identity(trade)):
            self._trade(state, trade, event_ms(trade), True, sol, tokens)

    def _trade(self, state: TokenState, event: Event, t_ms: int, buy: bool, sol: float, tokens: float) -> None:
        key, price, lamports = state.trade(event, t_ms, buy, sol, tokens, self.first_slots)
        self._tokens.move_to_end(state.mint)
        if price is None:  # counted, but no price to chart
            return
        if not self._queue_max:
            state.candles.add(t_ms, key, price, lamports, buy)
        else:
            self._candles(state, t_ms, key, price, lamports, buy)

    def _candles(self, state: TokenState, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> None:
        """A trade into its candles, when they are handed over: a closed one changed is handed over again."""
        for name, start, bar in state.candles.add_each(t_ms, key, price, lamports, buy):
            if bar.revision >= 0:  # a late trade changed a closed candle: hand over its revision
                bar.revision += 1
                self._hand_over(bar.freeze(state.mint, name, start, True))
            elif start + INTERVALS[name] <= self._clock:  # late into an interval already past: closed at once
                bar.revision = 0
                self._hand_over(bar.freeze(state.mint, name, start, True))
            else:
                self._open[name][state.mint] = start

    def _advance(self, t_ms: int) -> None:
        """Move the market clock; close the candles whose interval it has passed."""
        before, self._clock = self._clock, max(self._clock, t_ms)
        if not self._queue_max or self._clock == before:
            return
        for name, length in INTERVALS.items():
            if self._clock // length == before // length:
                continue
            still: dict[str, int] = {}
            for mint, start in self._open[name].items():
                state = self._tokens.get(mint)
                bar = None if state is None else state.candles[name].bars.get(start)
                if bar is None:
                    continue
                if start + length <= self._clock:
                    bar.revision = 0
                    self._hand_over(bar.freeze(mint, name, start, True))
                else:
                    still[mint] = start
            self._open[name] = still

    def _hand_over(self, candle: Candle) -> None:
        if len(self._closed) >= self._queue_max:
            self._closed.popleft()
            self._counts["candles_dropped"] += 1
        self._closed.append(candle)

    def _evict(self) -> None:
        while len(self._tokens) > self.max_tokens:
            mint, _ = self._tokens.popitem(last=False)
            for open_ in self._open.values():
                open_.pop(mint, None)
            self._counts["evicted"] += 1

    # -- readers ---------------------------------------------------------------------------

    def sol_usd(self) -> float | None:
        """The SOL/USD price now, from the source given; None if none is known (or it failed)."""
        source = self._sol_usd
        if source is None or isinstance(source, int | float):
            return None if source is None else float(source)
        try:
            value = source()
        except Exception:  # a price source's failure is "no price", never the reader's crash
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            return None
        return float(value)

    @property
    def clock_ms(self) -> int:
        """The market's "now": the newest event time it saw (epoch ms), so replay and live agree."""
        return self._clock

    def token(self, mint: str) -> TokenView | None:
        """A frozen snapshot of one mint's figures (None if the market does not track it)."""
        usd = self.sol_usd()
        with self._lock:
            state = self._tokens.get(mint)
            return None if state is None else state.view(self._clock, usd, self.first_slots)

    def tokens(self, *, sort: str = "last_trade", limit: int | None = None, **filters: Any) -> list[TokenView]:
        """Snapshots of the tracked mints that pass every filter given (see :func:`matches`), sorted
        (descending) by ``sort``, one of :data:`SORTS`. A USD filter passes nothing while no SOL/USD
        price is known."""
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}")
        _check_filters(filters)
        usd = self.sol_usd()
        max_age = filters.get("max_age_s")
        with self._lock:
            clock, states = self._clock, list(self._tokens.values())
            if filters.get("launched_only") or max_age is not None:  # cheap checks first: fewer snapshots to build
                states = [s for s in states if s.launch is not None]
            if max_age is not None:
                states = [s for s in states if s.launch is not None and clock - s.launch[2] <= max_age * 1000]
            views = [s.view(clock, usd, self.first_slots) for s in states]
        out = [v for v in views if matches(v, **filters)]
        out.sort(key=_SORTS[sort], reverse=True)
        return out if limit is None else out[:limit]

    def matches(self, mint: str | None, **filters: Any) -> bool:
        """Whether ``mint`` is tracked and passes every filter given (the filters of :meth:`tokens`)."""
        _check_filters(filters)
        view = None if mint is None else self.token(mint)
        return view is not None and matches(view, **filters)

    def candles(self, mint: str, interval: str = "1m", fill: bool = False) -> list[Candle]:
        """The kept candles of ``mint``, oldest first; ``fill``: empty intervals as flat candles, up to now."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
        with self._lock:
            state = self._tokens.get(mint)
            clock = self._clock
            candles = [] if state is None else state.candles[interval].list(mint, clock)
        return fill_gaps(candles, clock) if fill else candles

    def closed_candles(self) -> list[Candle]:
        """The candles closed (or revised by a late trade) since the last call, in closing order."""
        with self._lock:
            out = list(self._closed)
            self._closed.clear()
        return out

    def stats(self) -> dict[str, int]:
        """Counters: events, applied, duplicates, ignored (other kinds), bad (skipped), evicted,
        candles_dropped (closed candles nobody took in time), tracked (mints now)."""
        with self._lock:
            counts = self._counts
            events = self._applied + counts["ignored"] + counts["bad"]
            return {"events": events, "applied": self._applied, **counts, "tracked": len(self._tokens)}

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, mint: object) -> bool:
        return mint in self._tokens
