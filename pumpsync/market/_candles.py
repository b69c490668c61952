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
        """Add the trades of ``other``, each later than every trade in this bar: the bar ``add`` gives for
        them one by one (a sum, a min and a max; first and last by key, a tie in key going to the
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
assert all(longer % shorter == 0 for shorter, longer in itertools.pairwise(_LENGTHS))


class CandleSet:
    """One mint's candles of every interval (``series``: interval -> :class:`CandleSeries`).

    It keeps the bars of the last trade's shortest interval at hand: a trade in the same second (the
    common case: a busy mint trades many times a second) updates them without a look-up or a prune,
    exactly as :meth:`CandleSeries.add` would, since they are the bars it would find. When that
    second's bar is new and the longer intervals' bars holding it exist already, a trade updates the
    second's bar only: the longer ones are owed that bar, merged into them (:meth:`_Bar.merge`, the
    same bars) when a trade of another second comes or a reader takes a series (``[interval]``, under
    the market's lock, as every reader). The first second of a new minute is added to every bar.
    """

    __slots__ = ("_hot", "_hot_start", "_owed", "series")

    def __init__(self) -> None:
        self.series = {name: CandleSeries(name) for name in INTERVALS}
        self._hot_start: int | None = None  # start of the shortest interval whose bars _hot holds
        self._hot: tuple[_Bar, ...] = ()  # its bar of every interval, or of the shortest only when _owed
        self._owed = False  # the longer intervals' bars lack the trades of _hot's one bar

    def __getitem__(self, interval: str) -> CandleSeries:
        if self._owed:
            self._settle()
        return self.series[interval]

    def add(self, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> None:
        """Add a trade to the candle of every interval (for a market that hands over no candles)."""
        start = t_ms - t_ms % _LENGTHS[0]
        if start == self._hot_start:
            for bar in self._hot:  # _Bar.add, inline: this runs for most trades
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
            return
        if self._owed:
            self._settle()
        shortest, *longer = self.series.values()
        if start in shortest.bars or any(t_ms - t_ms % s.length not in s.bars for s in longer):
            self.add_each(t_ms, key, price, lamports, buy)
            return
        bar = shortest.add(t_ms, key, price, lamports, buy)[1]
        if shortest.bars.get(start) is bar:
            self._hot_start, self._hot, self._owed = start, (bar,), True
        else:  # pruned at once (older than every kept second): the longer bars now, nothing at hand
            for series in longer:
                series.add(t_ms, key, price, lamports, buy)
            self._hot_start, self._hot = None, ()

    def _settle(self) -> None:
        """Merge the owed second into the longer intervals' bars (kept: nothing else added since)."""
        start, (bar,) = self._hot_start, self._hot
        assert start is not None
        shortest, *longer = self.series.values()
        hot = [bar]
        for series in longer:
            into = series.bars[start - start % series.length]
            into.merge(bar)
            hot.append(into)
        self._hot, self._owed = tuple(hot), False  # every bar at hand again, for the rest of the second

    def add_each(self, t_ms: int, key: OrderKey, price: float, lamports: int, buy: bool) -> list[tuple[str, int, _Bar]]:
        """Add a trade through every series; returns (interval, start, bar) of each, for the hand-over."""
        if self._owed:
            self._settle()
        out = [(name, *series.add(t_ms, key, price, lamports, buy)) for name, series in self.series.items()]
        # at hand only if every bar is still kept (a very late trade's is pruned at once)
        if all(self.series[name].bars.get(start) is bar for name, start, bar in out):
            self._hot_start, self._hot = t_ms - t_ms % _LENGTHS[0], tuple(bar for _, _, bar in out)
        else:
            self._hot_start, self._hot = None, ()
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
