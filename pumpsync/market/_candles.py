"""OHLCV candles per mint, built from trades in an order-independent way.

A candle covers ``[start_ms, start_ms + interval)`` of event time (the trade's ``timestamp``, or
``received_at`` when the provider gives none). Open and close are the prices of the first and the
last trade in it by trade order (time, slot, signature), not by arrival, so a late (backfilled)
trade lands where it belongs and the candle is the one an uninterrupted run builds.

Empty intervals have no candle (what exchanges' OHLCV endpoints return); :func:`fill_gaps` gives
the flat candles (open = high = low = close = the previous close, volume 0) that charting
libraries that want a continuous axis expect.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

INTERVALS: dict[str, int] = {"1s": 1_000, "1m": 60_000, "5m": 300_000}
# Candles kept per mint and interval: 1 s for 10 min, 1 min for 2 h, 5 min for 24 h.
KEEP: dict[str, int] = {"1s": 600, "1m": 120, "5m": 288}

LAMPORTS = 1_000_000_000
OrderKey = tuple[int, int, str]  # (event time ms, slot or 0, signature or "")


@dataclass(frozen=True)
class Candle:
    """One OHLCV candle of one mint; prices in SOL per whole token, volume in SOL."""

    mint: str
    interval: str  # "1s", "1m" or "5m"
    start_ms: int
    open: float
    high: float
    low: float
    close: float
    volume_sol: float
    buys: int
    sells: int
    closed: bool = False  # the market's clock has passed its end
    # As handed over by Market.closed_candles(): > 0 when a late (backfilled) trade changed it after it
    # closed; it replaces the earlier one of the same (mint, interval, start_ms). Market.candles(): always 0.
    revision: int = 0

    @property
    def end_ms(self) -> int:
        return self.start_ms + INTERVALS[self.interval]

    @property
    def trades(self) -> int:
        return self.buys + self.sells

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for sinks: ``kind`` is ``"candle"``; (mint, interval, start_ms) identifies it."""
        return {
            "kind": "candle",
            "mint": self.mint,
            "interval": self.interval,
            "start_ms": self.start_ms,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume_sol": self.volume_sol,
            "buys": self.buys,
            "sells": self.sells,
            "closed": self.closed,
            "revision": self.revision,
        }


class _Bar:
    """The mutable candle the writer updates (private to the market's writer)."""

    __slots__ = ("buys", "close", "close_key", "high", "low", "open", "open_key", "revision", "sells", "volume")

    def __init__(self, key: OrderKey, price: float) -> None:
        self.open_key = self.close_key = key
        self.open = self.high = self.low = self.close = price
        self.volume = 0  # lamports: integer sums are the same in any order
        self.buys = self.sells = 0
        self.revision = -1  # -1: never closed

    def add(self, key: OrderKey, price: float, lamports: int, buy: bool) -> None:
        # open_key <= close_key always: a key at or past the close cannot be before the open
        if key >= self.close_key:
            self.close_key = key
            self.close = price
        elif key < self.open_key:
            self.open_key = key
            self.open = price
        if price > self.high:  # low <= high: a new high is no new low
            self.high = price
        elif price < self.low:
            self.low = price
        self.volume += lamports
        if buy:
            self.buys += 1
        else:
            self.sells += 1

    def merge(self, other: _Bar) -> None:
        """Add the trades of ``other``, each come after every trade in this bar: the bar ``add`` gives
        for them one by one (sums, a min and a max; first and last by key, a tie in key going to the
        earlier arrival for the open, to the later for the close)."""
        if other.close_key >= self.close_key:
            self.close_key = other.close_key
            self.close = other.close
        if other.open_key < self.open_key:
            self.open_key = other.open_key
            self.open = other.open
        if other.high > self.high:
            self.high = other.high
        if other.low < self.low:
            self.low = other.low
        self.volume += other.volume
        self.buys += other.buys
        self.sells += other.sells

    def freeze(self, mint: str, interval: str, start: int, closed: bool, revised: bool = True) -> Candle:
        return Candle(
            mint, interval, start, self.open, self.high, self.low, self.close, self.volume / LAMPORTS,
            self.buys, self.sells, closed, max(0, self.revision) if revised else 0,
        )  # fmt: skip


class CandleSeries:
    """One mint's candles of one interval: start ms -> bar, the newest ``KEEP`` kept."""

    __slots__ = ("bars", "interval", "length")

    def __init__(self, interval: str) -> None:
        self.interval = interval
        self.length = INTERVALS[interval]
        self.bars: dict[int, _Bar] = {}

    def add(self, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> tuple[int, _Bar]:
        """Add a trade; returns the candle's start and bar (``bar.revision >= 0``: it had already closed).
        The bar of a trade older than every kept one is pruned at once: returned, but no longer kept."""
        start = t_ms - t_ms % self.length
        bars = self.bars
        bar = bars.get(start)
        if bar is None:
            bar = bars[start] = _Bar(key, price)
            keep = KEEP[self.interval]
            if len(bars) > 2 * keep:  # pruned now and then, not at every candle
                for old in sorted(bars)[: len(bars) - keep]:
                    del bars[old]
        bar.add(key, price, lamports, buy)
        return start, bar

    def list(self, mint: str, clock_ms: int) -> list[Candle]:
        return [
            self.bars[s].freeze(mint, self.interval, s, s + self.length <= clock_ms, revised=False)
            for s in sorted(self.bars)[-KEEP[self.interval] :]
        ]


# The intervals nest (each length divides the next), so a trade in the same shortest interval as the
# previous one is in the same interval of every length: CandleSet's fast path relies on it.
_LENGTHS = sorted(INTERVALS.values())
SHORTEST = _LENGTHS[0]  # ms
assert all(longer % shorter == 0 for shorter, longer in itertools.pairwise(_LENGTHS))


class CandleSet:
    """One mint's candles of every interval (``series``: interval -> :class:`CandleSeries`).

    It keeps the bar of the last trade's shortest interval at hand (``hot``, from ``hot_start``): a
    trade in the same second (the common case: a busy mint trades many times a second) updates that bar
    alone, without a look-up or a prune (the market's fast path does it inline). The longer intervals'
    bars holding it (``_longer``, also at hand) are owed what it gained since ``_base``: merged into them
    (:meth:`_Bar.merge`: the bars one-by-one adds give) when a trade of another second comes or a reader
    takes a series (``[interval]``, under the market's lock as every reader). A trade of another second
    goes through :meth:`add_each`, every series, as before.
    """

    __slots__ = ("_base", "_longer", "hot", "hot_start", "series")

    def __init__(self) -> None:
        self.series = {name: CandleSeries(name) for name in INTERVALS}
        self.hot_start: int | None = None  # start of the shortest interval of hot
        self.hot: _Bar | None = None
        self._longer: tuple[_Bar, ...] = ()  # the longer intervals' bars holding hot's interval
        self._base = (0, 0, 0)  # hot's volume, buys, sells when _longer last had all of it

    def __getitem__(self, interval: str) -> CandleSeries:
        if self.hot is not None:
            self._settle()
        return self.series[interval]

    def add(self, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> None:
        """Add a trade to the candle of every interval (for a market that hands over no candles)."""
        if self.hot is not None and t_ms - t_ms % SHORTEST == self.hot_start:
            self.hot.add(key, price, lamports, buy)
        else:
            self.add_each(t_ms, key, price, lamports, buy)

    def _settle(self) -> None:
        """Give the longer intervals' bars what the bar at hand gained since the last time: the open, close,
        high and low again (the same trades again change none of them), the sums' difference."""
        bar = self.hot
        assert bar is not None
        volume, buys, sells = self._base
        if bar.buys == buys and bar.sells == sells:
            return
        extra = _Bar(bar.open_key, bar.open)
        extra.close_key, extra.close, extra.high, extra.low = bar.close_key, bar.close, bar.high, bar.low
        extra.volume, extra.buys, extra.sells = bar.volume - volume, bar.buys - buys, bar.sells - sells
        for into in self._longer:
            into.merge(extra)
        self._base = (bar.volume, bar.buys, bar.sells)

    def add_each(self, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> list[tuple[str, int, _Bar]]:
        """Add a trade through every series; returns (interval, start, bar) of each, for the hand-over."""
        if self.hot is not None:
            self._settle()
        out = [(name, *series.add(t_ms, key, price, lamports, buy)) for name, series in self.series.items()]
        # at hand only if every bar is still kept (a very late trade's is pruned at once)
        if all(self.series[name].bars.get(start) is bar for name, start, bar in out):
            hot = out[0][2]
            self.hot_start, self.hot, self._longer = out[0][1], hot, tuple(bar for _, _, bar in out[1:])
            self._base = (hot.volume, hot.buys, hot.sells)
        else:
            self.hot_start, self.hot, self._longer = None, None, ()
        return out


def fill_gaps(candles: Iterable[Candle], until_ms: int | None = None) -> list[Candle]:
    """The candles with each empty interval between them (and up to ``until_ms``) filled by a flat
    candle at the previous close, volume 0: a continuous series for charting libraries."""
    out: list[Candle] = []
    for candle in candles:
        if out:
            out.extend(_flat(out[-1], candle.start_ms))
        out.append(candle)
    if out and until_ms is not None:
        step = INTERVALS[out[-1].interval]
        out.extend(_flat(out[-1], until_ms - (until_ms - out[-1].start_ms) % step + step))
    return out


def _flat(last: Candle, before_ms: int) -> list[Candle]:
    step = INTERVALS[last.interval]
    price = last.close
    return [
        replace(
            last,
            start_ms=s,
            open=price,
            high=price,
            low=price,
            close=price,
            volume_sol=0.0,
            buys=0,
            sells=0,
            revision=0,
        )
        for s in range(last.start_ms + step, before_ms, step)
    ]
