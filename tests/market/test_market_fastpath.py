"""The market view's fast paths (a trade checked by exact types; same-second bars at hand; O(1) forgetting
of old trade identities) give every figure the general path gives, on random hostile streams; the
candles equal ones computed from scratch."""

from __future__ import annotations

from typing import Any

import pytest
from mkthelpers import DEV, MINT, T0, launch, trade
from mktstream import random_stream

from pumpsync.events import Event
from pumpsync.market import Market, _candles, _market
from pumpsync.market._candles import INTERVALS, LAMPORTS, CandleSet
from pumpsync.market._token import event_ms


class _General(Market):
    """Every trade through the general path, every candle through the series' look-up."""

    def _apply_trade(self, event: Event) -> bool:
        return self._apply(event)


def _figures(market: Market, mints: set[str]) -> list[Any]:
    out: list[Any] = [market.stats(), market.tokens(sort="volume_5m"), market.closed_candles()]
    for mint in sorted(mints):
        out.append(market.token(mint))
        out.extend(market.candles(mint, interval) for interval in INTERVALS)
    return out


def _both(events: list[Event], monkeypatch: pytest.MonkeyPatch, **options: Any) -> tuple[list[Any], list[Any]]:
    mints = {e.mint for e in events if isinstance(e.mint, str) and e.mint}
    fast, general = Market(**options), _General(**options)
    fast_out = [fast.update(e) for e in events]
    with monkeypatch.context() as patch:
        patch.setattr(CandleSet, "add", lambda self, *trade: self.add_each(*trade) and None)
        general_out = [general.update(e) for e in events]
        general_figures = _figures(general, mints)
    assert fast_out == general_out
    return _figures(fast, mints), general_figures


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", [{}, {"candle_queue": 300, "max_tokens": 1}], ids=["plain", "queue-evict"])
def test_the_fast_paths_give_the_general_paths_figures(
    seed: int, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    events = random_stream(seed, 5_000, mints=2)
    fast, general = _both(events, monkeypatch, **options)
    assert fast == general
    stats = fast[0]
    assert stats["duplicates"] and stats["bad"] and stats["applied"] > 4_000  # the stream is as hostile as meant


def test_identities_forgotten_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_market, "MAX_SEEN_PER_TOKEN", 5)
    events = [trade("A", "buy", 1e6, 0.01, ms=T0 + i, sig=f"s{i}") for i in range(20)]
    market = Market()
    market.feed(events)
    assert market.feed(events[-5:]) == 0  # the newest 5 are remembered
    assert market.feed(events[-6:-5]) == 1  # the one before is forgotten: applied again
    assert market.stats()["duplicates"] == 5
    fast, general = _both(random_stream(7, 3_000, mints=3), monkeypatch)
    assert fast == general


def test_a_trade_older_than_every_kept_candle(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 s candles are kept 600 to 1200 at a time: a trade older than all of them, arriving when 1200
    are kept, has its candle pruned at once (handed over, closed, then forgotten); the next trade of
    that second makes a new one."""
    events = [trade("A", "buy", 1e6, 0.01, ms=T0 + i * 1_000, sig=f"s{i}") for i in range(1_200)]
    events += [trade("B", "buy", 1e6, 0.02, ms=T0 - 7_200_000, sig=f"late{i}") for i in range(3)]
    for options in ({}, {"candle_queue": 5_000}):
        fast, general = _both(events, monkeypatch, **options)
        assert fast == general
    market = Market(candle_queue=5_000)
    assert market.feed(events) == len(events)
    late = [(c.trades, c.revision) for c in market.closed_candles() if c.interval == "1s" and c.start_ms < T0]
    assert late == [(1, 0), (1, 0), (2, 1)]


def _from_scratch(events: list[Event], interval: str) -> list[tuple[Any, ...]]:
    """Each candle from the trades in it: open/close by trade order (arrival breaks ties), high, low, sums."""
    length = INTERVALS[interval]
    groups: dict[int, list[tuple[tuple[int, int, str], float, Event]]] = {}
    for e in events:
        assert e.price_sol is not None
        ms = event_ms(e)
        groups.setdefault(ms - ms % length, []).append(((ms, e.slot or 0, e.signature or ""), e.price_sol, e))
    out = []
    for start in sorted(groups):
        bar = sorted(groups[start], key=lambda item: item[0])  # stable: the first arrival of the lowest key first
        prices = [p for _, p, _ in bar]
        volume = sum(round((e.sol_amount or 0.0) * LAMPORTS) for _, _, e in bar) / LAMPORTS
        buys = sum(e.side == "buy" for _, _, e in bar)
        out.append((start, bar[0][1], max(prices), min(prices), bar[-1][1], volume, buys, len(bar) - buys))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_candles_equal_candles_computed_from_scratch(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_candles, "KEEP", dict.fromkeys(INTERVALS, 1 << 30))  # none pruned: all comparable
    valid = [
        e._replace(price_sol=e.sol_amount / e.token_amount, timestamp=event_ms(e))
        for e in random_stream(seed, 3_000, mints=1)
        if e.kind == "trade" and e.sol_amount == e.sol_amount and e.sol_amount and e.token_amount
    ]
    unique = list({e.identity or id(e): e for e in valid}.values())
    market = Market()
    market.feed(unique)
    (mint,) = {e.mint for e in unique}
    for interval in INTERVALS:
        got = [
            (c.start_ms, c.open, c.high, c.low, c.close, c.volume_sol, c.buys, c.sells)
            for c in market.candles(mint, interval)
        ]
        assert got == _from_scratch(unique, interval), interval


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("options", [{}, {"candle_queue": 300, "max_tokens": 2}], ids=["plain", "queue-evict"])
def test_reads_between_trades_give_the_general_paths_figures(
    seed: int, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader in the middle of a second (the longer candles then take what they are owed, and the
    trades after it too), and mints first seen without a creator (a token_enriched before the launch:
    their trades are kept for the developer's figures on the fast path too)."""
    stream = random_stream(seed, 3_000, mints=3)
    mints = sorted({e.mint for e in stream if isinstance(e.mint, str) and e.mint})
    first = [Event("token_enriched", "test", m, None, None, T0, T0, 0, False, {}, name="N") for m in mints]
    events = first + stream
    fast, general = Market(**options), _General(**options)
    fast_out, general_out = [], []
    with monkeypatch.context() as patch:
        patch.setattr(CandleSet, "add", lambda self, *trade: self.add_each(*trade) and None)
        for i, event in enumerate(events):
            general_out.append(general.update(event))
            if i % 7 == 0 and isinstance(event.mint, str) and event.mint:
                general_out.append((general.token(event.mint), general.candles(event.mint, ("1m", "5m")[i % 2])))
    for i, event in enumerate(events):
        fast_out.append(fast.update(event))
        if i % 7 == 0 and isinstance(event.mint, str) and event.mint:
            fast_out.append((fast.token(event.mint), fast.candles(event.mint, ("1m", "5m")[i % 2])))
    assert fast_out == general_out
    assert _figures(fast, set(mints)) == _figures(general, set(mints))
    if not options:  # (evicted mints forget theirs)
        assert any(v and v.dev_sells for v in (fast.token(m) for m in mints))  # developer trades found late


def test_trades_before_the_creator_is_known_count_for_the_developer_on_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mint first seen without a creator (a token_enriched), then slot-less trades (nothing but the
    pending list makes them reach the developer's figures), then the launch naming the creator."""
    enriched = Event("token_enriched", "test", MINT, None, None, T0, T0, 0, False, {}, name="N")
    trades = [trade(DEV, "buy", 5e7, 1.5, slot=None, ms=T0 + 1, sig="d1")]
    trades += [trade(f"W{i}", "buy", 1e6, 0.03, slot=None, ms=T0 + 2 + i, sig=f"w{i}") for i in range(5)]
    trades += [trade(DEV, "sell", 2e7, 0.7, slot=None, ms=T0 + 9, sig="d2")]
    events = [enriched, *trades, launch(ms=T0)]
    fast, general = _both(events, monkeypatch)
    assert fast == general
    view = fast[3]
    assert view.launch.dev_buy_tokens == 5e7 and [s.signature for s in view.dev_sells] == ["d2"]
    assert view.dev_tokens == 3e7
