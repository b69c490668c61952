"""One mint's mutable state; only the market's writer touches it (under the market's lock).

Every figure is order-independent: sums, sets, and "latest" / "earliest" chosen by trade order
(event time, slot, signature), never by arrival. So a duplicate changes nothing (identities are
remembered) and an out-of-order (backfilled) event gives the figures of an in-order run.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

from pumpsync.events import Event
from pumpsync.market._candles import LAMPORTS, CandleSet, OrderKey
from pumpsync.market._view import DevSell, Launch, TokenView, Window

SUPPLY = 1_000_000_000.0  # pump.fun mints 1 B tokens (6 decimals)
UNIT = 1_000_000  # balances in raw units: exact sums, so "sold everything" is exactly 0
CURVE_TOKENS = 793_100_000.0  # sold when the bonding curve completes
PUMPSWAP = "pumpswap"
MAX_PENDING = 256  # per mint; a launch later than this many trades is not waited for


def event_ms(event: Event) -> int:
    return event.timestamp if event.timestamp is not None else event.received_at


def trade_identity(event: Event) -> tuple[str, Any, Any] | None:
    """A trade's identity among its mint's trades: ``Event.identity`` without the kind and the mint, the
    same for every trade of one mint (None: no signature, never a duplicate)."""
    sig = event.signature
    return None if sig is None else (sig, event.side, event.trader)


def order_key(event: Event) -> OrderKey:
    return (event_ms(event), event.slot or 0, event.signature or "")


class TokenState:
    __slots__ = (
        "balances",
        "buys",
        "candles",
        "creator",
        "dev_buy",
        "dev_sells",
        "graduated_ms",
        "last_key",
        "launch",
        "liquidity",
        "max_seen",
        "migrated_ms",
        "mint",
        "name",
        "net_curve",
        "pending",
        "price",
        "price_key",
        "progress_hint",
        "pumpswap",
        "seen",
        "seen_order",
        "sells",
        "slot_buyers",
        "symbol",
        "venue",
        "volume",
    )  # fmt: skip

    def __init__(self, mint: str, max_seen: int) -> None:
        self.mint = mint
        self.name: str | None = None
        self.symbol: str | None = None
        self.creator: str | None = None
        self.launch: tuple[str | None, int | None, int] | None = None  # signature, slot, ms
        self.dev_buy: tuple[OrderKey, float, float] | None = None  # the creator's earliest buy
        self.dev_sells: dict[OrderKey, DevSell] = {}
        # Trades seen before the creator was known (a backfilled launch): replayed for the developer figures.
        self.pending: list[tuple[str, OrderKey, str | None, int | None, bool, float, float, str | None]] | None = []
        self.balances: dict[str, int] = {}  # raw tokens, every trader seen (0: sold out)
        # identities applied, at most max_seen: the set, and the order to forget them in
        self.seen: set[Any] = set()
        self.seen_order: deque[Any] = deque()
        self.max_seen = max_seen
        self.buys = self.sells = self.pumpswap = 0
        self.volume = 0  # lamports
        self.net_curve = 0  # raw tokens bought minus sold on the curve
        self.last_key: OrderKey | None = None
        self.price_key: OrderKey | None = None  # of the newest trade with a price
        self.price: float | None = None
        self.venue: str | None = None
        self.progress_hint: tuple[OrderKey, float] | None = None
        self.graduated_ms: int | None = None
        self.migrated_ms: int | None = None
        self.liquidity: float | None = None
        self.slot_buyers: dict[int, set[str]] = {}  # the lowest slots with buys
        self.candles = CandleSet()

    # -- writer ----------------------------------------------------------------------------

    def remember(self, identity: Any) -> bool:
        """False if this identity (:func:`trade_identity`) was applied already."""
        if identity is None:
            return True
        seen = self.seen
        if identity in seen:
            return False
        seen.add(identity)
        self.seen_order.append(identity)
        if len(seen) > self.max_seen:  # forget the oldest: O(1)
            seen.discard(self.seen_order.popleft())
        return True

    def token_info(self, event: Event, first_slots: int) -> None:
        self.name = self.name or event.name
        self.symbol = self.symbol or event.symbol
        if event.creator and self.creator is None:
            self.creator = event.creator
            self._recount_dev()
        if event.kind == "new_token":
            sig, slot, ms = event.signature, event.slot, event_ms(event)
            if self.launch is not None:  # the same launch from another source: fill what it lacked
                sig, slot, ms = self.launch[0] or sig, self.launch[1] or slot, min(ms, self.launch[2])
            self.launch = (sig, slot, ms)
            self._trim_slots(first_slots)
        if event.bonding_curve_progress is not None:
            key = order_key(event)
            if self.progress_hint is None or key >= self.progress_hint[0]:
                self.progress_hint = (key, float(event.bonding_curve_progress))

    def graduate(self, event: Event) -> None:
        ms = event_ms(event)
        if event.kind == "graduation":
            self.graduated_ms = ms if self.graduated_ms is None else min(ms, self.graduated_ms)
        else:
            self.migrated_ms = ms if self.migrated_ms is None else min(ms, self.migrated_ms)
        if event.liquidity_sol is not None:
            self.liquidity = float(event.liquidity_sol)

    def trade(
        self, event: Event, t_ms: int, buy: bool, sol: float, tokens: float, first_slots: int
    ) -> tuple[OrderKey, float | None, int]:
        """Apply a checked trade at ``t_ms`` (its event time); returns (order key, price, lamports) for the candles."""
        slot, sig, trader, venue = event.slot, event.signature, event.trader, event.venue
        key = (t_ms, slot or 0, sig or "")
        raw = round(tokens * UNIT)
        lamports = round(sol * LAMPORTS)
        price = event.price_sol
        if not (type(price) is float and 0.0 < price < math.inf) and (  # the common case first: a float in range
            not isinstance(price, float | int) or not 0 < price < math.inf
        ):
            price = sol / tokens if sol > 0 and tokens > 0 else None  # None: no price (a zero trade)
        if trader is not None:  # every trader has a balance, 0 once sold out: unique traders and holders in one
            balances = self.balances
            balances[trader] = balances.get(trader, 0) + (raw if buy else -raw)
        if buy:
            self.buys += 1
        else:
            self.sells += 1
        self.volume += lamports
        if venue == PUMPSWAP:
            self.pumpswap += 1
        else:
            self.net_curve += raw if buy else -raw
        last = self.last_key
        if last is None or key >= last:
            self.last_key, self.venue = key, venue
        if price is not None:
            last = self.price_key
            if last is None or key >= last:
                self.price_key, self.price = key, price
        if trader is not None:
            self.parties(key, sig, slot, trader, buy, sol, tokens, venue, first_slots)
        return key, price, lamports

    def parties(
        self,
        key: OrderKey,
        sig: str | None,
        slot: int | None,
        trader: str,
        buy: bool,
        sol: float,
        tokens: float,
        venue: str | None,
        first_slots: int,
    ) -> None:
        """The developer's trades, the trades kept until the developer is known, the first slots' buyers:
        for most trades none applies (the market's fast path calls this only when one may)."""
        creator = self.creator
        if trader == creator:
            self._dev_trade(key, sig, slot, buy, sol, tokens, venue)
        elif creator is None and self.pending is not None:
            self.pending.append((trader, key, sig, slot, buy, sol, tokens, venue))
            if len(self.pending) > MAX_PENDING:
                self.pending = None  # too late a launch to tell: dev sells before it stay unknown
        if buy and slot is not None:
            slots = self.slot_buyers
            if slot in slots:
                slots[slot].add(trader)
            elif len(slots) <= first_slots or slot < max(slots):  # else: not among the lowest slots
                slots[slot] = {trader}
                self._trim_slots(first_slots)

    def _dev_trade(
        self, key: OrderKey, sig: str | None, slot: int | None, buy: bool, sol: float, tokens: float, venue: str | None
    ) -> None:
        if buy:
            if self.dev_buy is None or key < self.dev_buy[0]:
                self.dev_buy = (key, tokens, sol)
        else:
            self.dev_sells[key] = DevSell(sig, slot, key[0], tokens, sol, venue)

    def _recount_dev(self) -> None:
        """The creator became known after some trades (a backfilled launch): find its buys and sells among them."""
        for trader, key, sig, slot, buy, sol, tokens, venue in self.pending or ():
            if trader == self.creator:
                self._dev_trade(key, sig, slot, buy, sol, tokens, venue)
        self.pending = None

    def _trim_slots(self, first_slots: int) -> None:
        if len(self.slot_buyers) > first_slots + 1:
            for slot in sorted(self.slot_buyers)[first_slots + 1 :]:
                del self.slot_buyers[slot]

    # -- readers (under the market's lock) ------------------------------------------------

    def _window(self, seconds: int, clock: int, sol_usd: float | None) -> Window:
        series = self.candles["1s" if seconds <= 600 else "1m"]
        length, bars = series.length, series.bars
        first = clock - seconds * 1000
        first -= first % length  # the candle holding the window's first instant, and every one since
        volume, buys, sells = 0, 0, 0
        if self.last_key is not None and self.last_key[0] >= first:
            # whichever is fewer: the kept candles, or the window's intervals
            if len(bars) <= (clock - first) // length + 1:
                chosen = [bar for start, bar in bars.items() if start >= first]
            else:
                chosen = [bar for start in range(first, clock + 1, length) if (bar := bars.get(start)) is not None]
            for bar in chosen:
                volume += bar.volume
                buys += bar.buys
                sells += bar.sells
        sol = volume / LAMPORTS
        return Window(seconds, sol, buys, sells, None if sol_usd is None else sol * sol_usd)

    def view(self, clock: int, sol_usd: float | None, first_slots: int) -> TokenView:
        launch = None
        if self.launch is not None:
            sig, slot, ms = self.launch
            dev = self.dev_buy
            launch = Launch(sig, slot, ms, self.creator, dev[1] if dev else None, dev[2] if dev else None)
        whole = launch is not None
        done = self.graduated_ms is not None or self.migrated_ms is not None
        if done:
            progress: float | None = 100.0
        elif launch is not None:
            progress = min(100.0, max(0.0, self.net_curve / UNIT / CURVE_TOKENS * 100.0))
        else:
            progress = self.progress_hint[1] if self.progress_hint else None
        mcap = None if self.price is None else self.price * SUPPLY
        positive = [b for b in self.balances.values() if b > 0]
        top10 = sum(heapq.nlargest(10, positive)) / UNIT / SUPPLY * 100.0
        dev_tokens = None if self.creator is None else max(0, self.balances.get(self.creator, 0)) / UNIT
        first, early, bundle = self._early(launch.slot if launch else None, first_slots)
        return TokenView(
            mint=self.mint, name=self.name, symbol=self.symbol, launch=launch, whole_life_seen=whole,
            age_s=None if launch is None else max(0.0, (clock - launch.timestamp_ms) / 1000.0),
            price_sol=self.price, market_cap_sol=mcap,
            market_cap_usd=None if mcap is None or sol_usd is None else mcap * sol_usd,
            progress=progress, graduated=done, graduated_ms=self.graduated_ms,
            migrated=self.migrated_ms is not None, migrated_ms=self.migrated_ms, liquidity_sol=self.liquidity,
            venue=self.venue, w1m=self._window(60, clock, sol_usd), w5m=self._window(300, clock, sol_usd),
            w1h=self._window(3600, clock, sol_usd), trades=self.buys + self.sells, buys=self.buys, sells=self.sells,
            volume_sol=self.volume / LAMPORTS, pumpswap_trades=self.pumpswap, unique_traders=len(self.balances),
            holders=len(positive), top10_share=top10, dev_tokens=dev_tokens,
            dev_share=None if dev_tokens is None else dev_tokens / SUPPLY * 100.0,
            dev_sells=tuple(self.dev_sells[k] for k in sorted(self.dev_sells)),
            first_slot_buyers=first, early_buyers=early, max_same_slot_buyers=bundle,
            last_trade_ms=None if self.last_key is None else self.last_key[0],
        )  # fmt: skip

    def _early(self, launch_slot: int | None, first_slots: int) -> tuple[tuple[str, ...], tuple[str, ...], int]:
        if not self.slot_buyers:
            return (), (), 0
        start = min(self.slot_buyers) if launch_slot is None else min(launch_slot, min(self.slot_buyers))
        slots = {s: b - {self.creator} for s, b in self.slot_buyers.items() if s < start + first_slots}
        early = sorted(set().union(*slots.values())) if slots else []
        return (
            tuple(sorted(slots.get(start, ()))),
            tuple(early),
            max((len(b) for b in slots.values()), default=0),
        )
