"""The market view's figures from hand-built events: what each one means, and that duplicates,
out-of-order backfill and bad input change nothing they should not."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from mkthelpers import DEV, MINT, SLOT0, T0, has_venue, launch, trade

import pumpsync
from pumpsync.events import Event
from pumpsync.market import Market, candle_json, fill_gaps, load_candles, store_candles


def scenario() -> list[Event]:
    """A launch with a developer buy, a 3-wallet bundle in the launch slot, later buyers, a developer sell."""
    return [
        launch(),
        trade(DEV, "buy", 50_000_000, 1.5, sig="L"),  # the creator's first buy, in the launch transaction
        trade("A", "buy", 20_000_000, 0.7),
        trade("B", "buy", 20_000_000, 0.7),
        trade("C", "buy", 10_000_000, 0.4),
        trade("D", "buy", 5_000_000, 0.2, slot=SLOT0 + 2, ms=T0 + 1_000),
        trade("E", "buy", 5_000_000, 0.2, slot=SLOT0 + 5, ms=T0 + 2_500),
        trade(DEV, "sell", 30_000_000, 1.0, slot=SLOT0 + 10, ms=T0 + 4_000),
        trade("A", "sell", 20_000_000, 0.8, slot=SLOT0 + 150, ms=T0 + 70_000),  # A holds nothing now
    ]


def test_the_figures_of_a_launch() -> None:
    market = Market(sol_usd=200.0)
    assert market.feed(scenario()) == 9
    v = market.token(MINT)
    assert v is not None and v.whole_life_seen
    assert v.launch is not None and (v.launch.creator, v.launch.slot, v.launch.timestamp_ms) == (DEV, SLOT0, T0)
    assert (v.launch.dev_buy_tokens, v.launch.dev_buy_sol) == (50_000_000, 1.5)
    assert v.dev_tokens == 20_000_000 and v.dev_share == pytest.approx(2.0)
    assert [(s.tokens, s.sol, s.slot) for s in v.dev_sells] == [(30_000_000, 1.0, SLOT0 + 10)]
    assert v.first_slot_buyers == ("A", "B", "C")  # the developer is not a sniper of its own launch
    assert v.early_buyers == ("A", "B", "C", "D")  # slots SLOT0 .. SLOT0+2
    assert v.max_same_slot_buyers == 3
    assert v.holders == 5 and v.unique_traders == 6  # DEV, B, C, D, E hold; A sold out
    assert v.top10_share == pytest.approx((20 + 20 + 10 + 5 + 5) / 1000 * 100)
    assert (v.trades, v.buys, v.sells) == (8, 6, 2)
    assert v.price_sol == pytest.approx(0.8 / 20_000_000)  # the last trade's
    assert v.market_cap_sol == pytest.approx(0.8 / 20_000_000 * 1e9)
    assert v.market_cap_usd == pytest.approx(0.8 / 20_000_000 * 1e9 * 200.0)
    net = 50 + 20 + 20 + 10 + 5 + 5 - 30 - 20
    assert v.progress == pytest.approx(net / 793.1 * 100)
    assert v.age_s == 70.0 and market.clock_ms == T0 + 70_000
    # windows: market time is T0+70 s, so the last minute holds only A's sell; 5 min and 1 h hold all
    assert (v.w1m.buys, v.w1m.sells, v.w1m.volume_sol) == (0, 1, pytest.approx(0.8))
    assert v.w1m.volume_usd == pytest.approx(0.8 * 200)
    assert (v.w5m.buys, v.w5m.sells) == (6, 2) and (v.w1h.buys, v.w1h.sells) == (6, 2)
    assert v.w5m.volume_sol == pytest.approx(v.volume_sol) == pytest.approx(1.5 + 0.7 + 0.7 + 0.4 + 0.2 + 0.2 + 1 + 0.8)


def test_no_price_no_usd_and_a_broken_price_source_is_no_price() -> None:
    for source in (None, lambda: None, lambda: 1 / 0, lambda: float("nan"), lambda: -3.0):
        market = Market(sol_usd=source)
        market.feed(scenario())
        v = market.token(MINT)
        assert v is not None and v.market_cap_usd is None and v.w5m.volume_usd is None and v.market_cap_sol
        assert market.tokens(min_market_cap_usd=1) == []
    prices = iter([100.0, 300.0])
    market = Market(sol_usd=lambda: next(prices))  # a live function: asked at each read
    market.feed(scenario())
    first, second = market.token(MINT), market.token(MINT)
    assert first and second and second.market_cap_usd == pytest.approx(3 * (first.market_cap_usd or 0))


def test_duplicates_change_nothing() -> None:
    once, twice = Market(), Market()
    once.feed(scenario())
    events = scenario()
    twice.feed(events + [e._replace(provider="other", received_at=e.received_at + 5) for e in events])
    assert twice.token(MINT) == once.token(MINT)
    assert twice.candles(MINT, "1s") == once.candles(MINT, "1s")
    assert twice.stats()["duplicates"] == 8  # every trade; the launch merges (a second source fills gaps)


@pytest.mark.parametrize("seed", range(5))
def test_out_of_order_backfill_gives_the_same_figures(seed: int) -> None:
    in_order = Market()
    in_order.feed(scenario())
    shuffled = scenario()
    random.Random(seed).shuffle(shuffled)
    late = Market()
    late.feed(shuffled)
    assert late.token(MINT) == in_order.token(MINT)
    for interval in ("1s", "1m", "5m"):
        assert late.candles(MINT, interval) == [c for c in in_order.candles(MINT, interval)]


def test_the_creators_first_buy_reported_with_the_launch_counts_once() -> None:
    """PumpPortal reports it in the launch (initialBuy); Solana and Anaxer as a trade of the same transaction."""
    pp = launch(initial_buy_tokens=50_000_000.0, initial_buy_sol=1.5)
    for events in (
        [pp],
        [pp, trade(DEV, "buy", 50_000_000, 1.5, sig="L")],
        [trade(DEV, "buy", 50_000_000, 1.5, sig="L"), pp],
    ):
        market = Market()
        market.feed(events)
        v = market.token(MINT)
        assert v is not None and v.dev_tokens == 50_000_000 and v.buys == 1
        assert v.launch is not None and v.launch.dev_buy_tokens == 50_000_000


def test_graduation_migration_and_pumpswap_trades() -> None:
    market = Market()
    market.feed(scenario())
    grad = Event("graduation", "test", MINT, "G", SLOT0 + 200, T0 + 80_000, T0 + 80_000, 0, False, {})
    migr = Event(
        "migration", "test", MINT, "M", SLOT0 + 201, T0 + 81_000, T0 + 81_000, 0, False, {}, liquidity_sol=79.0
    )
    market.feed([grad, migr, trade("F", "buy", 1_000_000, 0.1, slot=SLOT0 + 300, ms=T0 + 90_000, venue="pumpswap")])
    v = market.token(MINT)
    assert v is not None and v.graduated and v.migrated and v.progress == 100.0 and v.liquidity_sol == 79.0
    assert (v.graduated_ms, v.migrated_ms) == (T0 + 80_000, T0 + 81_000)
    assert v.price_sol == pytest.approx(0.1 / 1_000_000) and v.holders == 6
    if has_venue():
        assert v.venue == "pumpswap" and v.pumpswap_trades == 1
    else:  # until Event.venue exists the trade still counts, as a trade of unknown venue
        assert v.venue is None and v.pumpswap_trades == 0


def test_candles_close_on_time_and_a_late_trade_revises_its_candle() -> None:
    market = Market(candle_queue=1000)
    market.feed(scenario()[:5])  # all at T0
    assert market.closed_candles() == []  # nothing has closed yet: market time is still T0
    market.update(trade("D", "buy", 5_000_000, 0.2, slot=SLOT0 + 2, ms=T0 + 1_000))
    closed = market.closed_candles()
    assert [(c.interval, c.start_ms, c.trades, c.closed, c.revision) for c in closed] == [("1s", T0, 4, True, 0)]
    candle = closed[0]
    assert (candle.open, candle.close) == (pytest.approx(1.5 / 50e6), pytest.approx(0.4 / 10e6))
    assert candle.high == pytest.approx(0.04 / 1e6) and candle.volume_sol == pytest.approx(3.3)
    assert candle.to_dict()["kind"] == "candle"
    market.update(trade("Z", "sell", 1_000_000, 0.01, ms=T0 + 10, sig="late"))  # backfill into the closed second
    (revised,) = market.closed_candles()
    assert (revised.start_ms, revised.trades, revised.revision, revised.sells) == (T0, 5, 1, 1)
    market.update(trade("E", "buy", 5_000_000, 0.2, ms=T0 + 61_000))
    assert {(c.interval, c.start_ms) for c in market.closed_candles()} == {("1s", T0 + 1_000), ("1m", T0 - T0 % 60_000)}


def test_empty_intervals_have_no_candle_or_a_flat_one_on_request() -> None:
    market = Market()
    market.feed([trade("A", "buy", 1e6, 0.01, ms=T0), trade("B", "buy", 1e6, 0.03, ms=T0 + 3_500)])
    assert [c.start_ms for c in market.candles(MINT, "1s")] == [T0, T0 + 3_000]
    filled = market.candles(MINT, "1s", fill=True)
    assert [c.start_ms for c in filled] == [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000]
    assert [(c.open, c.close, c.volume_sol) for c in filled[1:3]] == [(0.01 / 1e6, 0.01 / 1e6, 0.0)] * 2
    assert fill_gaps(market.candles(MINT, "1s"), T0 + 5_200)[-1].start_ms == T0 + 5_000


def test_filters_and_sorting() -> None:
    market = Market(sol_usd=100.0)
    market.feed(scenario())
    market.feed(
        [
            launch(mint="M2", creator="dev2", sig="L2", ms=T0 + 60_000),
            trade("X", "buy", 1e6, 0.01, mint="M2", ms=T0 + 60_000),
        ]
    )
    market.update(trade("Y", "buy", 1e6, 0.01, mint="M3", ms=T0 + 60_000))  # launch not seen
    cap = 0.8 / 20_000_000 * 1e9 * 100  # MINT's market cap in USD: 4000
    assert [v.mint for v in market.tokens(min_market_cap_usd=cap - 1)] == [MINT]
    assert {v.mint for v in market.tokens(max_age_s=30)} == {"M2"}  # MINT is 70 s old; M3's age is unknown
    assert [v.mint for v in market.tokens(launched_only=True, sort="age")] == ["M2", MINT]
    assert [v.mint for v in market.tokens(max_dev_share=5, max_first_slot_buyers=2)] == ["M2"]
    assert [v.mint for v in market.tokens(sort="volume_5m", limit=1)] == [MINT]
    with pytest.raises(ValueError, match="sort must be one of"):
        market.tokens(sort="nope")
    with pytest.raises(TypeError, match="unknown filter min_mc"):
        market.tokens(min_mc=5)
    assert market.matches(MINT, min_holders=5) and not market.matches("M3", launched_only=True)


def test_wrap_passes_every_event_through_after_applying_it() -> None:
    market = Market()
    events = scenario()
    seen = []
    for event in market.wrap(iter(events)):
        view = market.token(MINT)
        seen.append((event, view.trades if view else None))
    assert [e for e, _ in seen] == events
    assert [n for _, n in seen] == [0, 1, 2, 3, 4, 5, 6, 7, 8]  # each trade counted before the loop sees it


def test_memory_is_bounded_least_recently_traded_first() -> None:
    market = Market(max_tokens=3)
    for i in range(5):
        market.update(trade("A", "buy", 1e6, 0.01, mint=f"M{i}", ms=T0 + i))
    market.update(trade("A", "buy", 1e6, 0.01, mint="M2", ms=T0 + 10))  # M2 traded again: kept
    market.update(trade("A", "buy", 1e6, 0.01, mint="M5", ms=T0 + 11))
    assert len(market) == 3 and {"M2", "M4", "M5"} == {m for m in ("M0", "M1", "M2", "M3", "M4", "M5") if m in market}
    assert market.stats()["evicted"] == 3 and market.stats()["tracked"] == 3


def test_bad_events_are_counted_and_skipped() -> None:
    market = Market()
    good = trade("A", "buy", 1e6, 0.01)
    for bad in (
        good._replace(sol_amount=float("nan")), good._replace(token_amount=-1.0), good._replace(side="hold"),
        good._replace(sol_amount="1"), good._replace(timestamp="x", received_at="y"), good._replace(mint=7),
        good._replace(slot="400"), good._replace(trader=5), good._replace(signature=b"x"),
        launch(creator=["x"]), launch(bonding_curve_progress=float("inf")),
        Event("migration", "test", MINT, "M", 1, T0, T0, 0, False, {}, liquidity_sol="lots"),
    ):  # fmt: skip
        assert market.update(bad) is False
    assert market.stats()["bad"] == 12 and len(market) == 0 and market.clock_ms == 0
    assert market.update(good) and market.update(good._replace(kind="price")) is False
    assert market.stats()["ignored"] == 1


def test_exported() -> None:
    assert pumpsync.Market is Market and "Market" in pumpsync.__all__


def test_candles_to_sqlite_and_jsonl_are_idempotent(tmp_path: Path) -> None:
    market = Market(candle_queue=1000)
    market.feed(scenario())
    closed = market.closed_candles()
    market.update(trade("Z", "sell", 1_000_000, 0.01, ms=T0 + 10, sig="late"))  # revises the first 1 s candle
    revised = market.closed_candles()
    db = sqlite3.connect(tmp_path / "c.db")
    store_candles(db, closed + revised)
    store_candles(db, closed)  # again, and older revisions: nothing changes
    stored = load_candles(db, MINT, "1s")
    assert stored[0].revision == 1 and all(c.revision == 0 for c in stored[1:])
    live = [c for c in market.candles(MINT, "1s") if c.closed and c.start_ms < T0 + 70_000]
    assert [replace(c, revision=0) for c in stored] == live
    line = json.loads(candle_json(revised[0]))
    assert line["kind"] == "candle" and line["revision"] == 1 and line["interval"] == "1s"


def test_the_candle_queue_is_bounded_and_off_by_default() -> None:
    quiet, small = Market(), Market(candle_queue=2)
    events = [trade("A", "buy", 1e6, 0.01, ms=T0 + i * 1_000, sig=f"s{i}") for i in range(6)]
    quiet.feed(events)
    small.feed(events)
    assert quiet.closed_candles() == [] and quiet.stats()["candles_dropped"] == 0
    assert [c.start_ms for c in small.closed_candles()] == [T0 + 3_000, T0 + 4_000]  # the newest two
    assert small.stats()["candles_dropped"] == 3
    assert quiet.candles(MINT, "1s") == small.candles(MINT, "1s")


def test_a_trade_without_a_price_is_counted_but_moves_no_price_nor_candle() -> None:
    for order in (1, -1):
        market = Market()
        events = [trade("A", "buy", 1e6, 0.02, ms=T0), trade("B", "buy", 0.0, 0.0, ms=T0 + 5, sig="zero")]
        market.feed(events[::order])
        view = market.token(MINT)
        assert view is not None and view.trades == 2 and view.price_sol == pytest.approx(0.02 / 1e6)
        (candle,) = market.candles(MINT, "1s")
        assert candle.low == candle.high == pytest.approx(0.02 / 1e6) and candle.trades == 1
