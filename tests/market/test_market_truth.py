"""The market view against ground truth: the simulator's book (every holder's balance), real captured
events, and a restart (state rebuilt from a replay recording) against an uninterrupted run."""

from __future__ import annotations

import heapq
import json
import sys
from pathlib import Path
from typing import Any

import pytest

import pumpsync
from pumpsync.daemon.sinks.sqlite import SqliteSink
from pumpsync.events import Event
from pumpsync.market import Market
from pumpsync.simulator import Launch, Simulator, Trade
from tests.conftest import wait_until

TESTS = Path(__file__).resolve().parents[1]
UNIT = 1_000_000


def _stream_simulated(n: int, seed: int) -> tuple[list[Event], Any, list[Any]]:
    """``n`` market steps of a simulator, through a real Anaxer client over 127.0.0.1: (events, the sim's market)."""
    with Simulator(providers=("anaxer",), rate=0, seed=seed, paused=True) as sim:
        channels: dict[str, dict[str, Any]] = {"creations": {}, "trades": {}, "graduations": {}}
        client = pumpsync.Client("anaxer", api_key="k", url=sim.url("anaxer"), channels=channels)
        with client:
            assert client.wait_connected(timeout=10)
            wait_until(lambda: sum(len(c.subscriptions) for c in sim.connections("anaxer")) == 3, 10, "subscribed")
            emitted = sim.emit(n)
            want = sum(isinstance(e, Trade | Launch) for e in emitted)
            got: list[Event] = []

            def drained() -> bool:
                while not client.queue.empty():
                    item = client.queue.get()
                    assert isinstance(item, Event), item
                    got.append(item)
                return sum(e.kind in ("trade", "new_token") for e in got) >= want

            wait_until(drained, 30, f"{want} launches and trades")
        return got, sim._market, emitted  # the simulator's model: its book is the ground truth


def test_holders_developer_and_top10_equal_the_simulators_book() -> None:
    events, book, emitted = _stream_simulated(600, seed=11)
    market = Market()
    market.feed(events)
    launched = {e.mint for e in events if e.kind == "new_token"}
    checked = sold_by_dev = sniped = 0
    for mint, live in book._live.items():  # the mints still on their curve; graduated ones left the book
        if mint not in launched:
            continue  # launched before we listened: its holders are not all known (that is the estimate's limit)
        view = market.token(mint)
        assert view is not None and view.whole_life_seen
        holders = {w: raw for w, raw in live.holders.items() if raw > 0}
        assert view.holders == len(holders), mint
        creator = live.token.creator
        assert view.dev_tokens == holders.get(creator, 0) / UNIT
        assert view.top10_share == pytest.approx(sum(heapq.nlargest(10, holders.values())) / UNIT / 1e9 * 100)
        assert view.progress == pytest.approx(live.curve.progress)
        assert view.launch is not None and view.launch.creator == creator
        trades = [e for e in emitted if isinstance(e, Trade) and e.mint == mint]
        dev_sells = [t.signature for t in trades if t.trader == creator and t.side == "sell"]
        assert [s.signature for s in view.dev_sells] == dev_sells
        (launch,) = [e for e in emitted if isinstance(e, Launch) and e.mint == mint]
        slot_buyers = {t.trader for t in trades if t.side == "buy" and t.slot == launch.slot and t.trader != creator}
        assert set(view.first_slot_buyers) == slot_buyers
        checked += 1
        sold_by_dev += bool(dev_sells)
        sniped += bool(slot_buyers)
    assert checked >= 10  # enough mints compared for the test to mean something
    assert sold_by_dev and sniped, (sold_by_dev, sniped)  # and the signals were not all empty


@pytest.mark.parametrize("store", ["jsonl", "daemon-sqlite"])
def test_a_restart_from_a_recording_gives_the_figures_of_an_uninterrupted_run(tmp_path: Path, store: str) -> None:
    events, _, _ = _stream_simulated(300, seed=12)
    whole = Market()
    whole.feed(events)
    cut = len(events) * 2 // 3
    if store == "jsonl":  # pumpsync stream --format jsonl, demo --record, the daemon's jsonl sink
        recording = tmp_path / "events.jsonl"
        recording.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events[:cut]))
    else:  # the daemon's sqlite sink, written by the sink itself
        recording = tmp_path / "events.db"
        sink = SqliteSink("db", recording)
        sink.open()
        assert sink.write(events[:cut]) == cut
        sink.close_resources()
    # The restarted process: its state rebuilt by replaying what it recorded, then the live stream
    # resumes with an overlap (a reconnect re-delivers the last events): duplicates, counted once.
    restarted = Market()
    with pumpsync.connect("replay", url=f"file:{recording}", speed=0) as replay:
        assert restarted.feed(replay) > 0
    restarted.feed(events[cut - 20 :])
    mints = {e.mint for e in events if e.mint}
    assert [restarted.token(m) for m in sorted(mints)] == [whole.token(m) for m in sorted(mints)]
    assert all(restarted.candles(m, "1s") == whole.candles(m, "1s") for m in mints)


def test_real_solana_launch_and_first_buy() -> None:
    """The captured CreateV2 + first buy (tests/solana/fixtures, mainnet slot 435946190) through the real dialect."""
    sys.path.insert(0, str(TESTS / "solana"))
    from test_dialect import NOW, notification, real_logs, subscribed

    outputs = subscribed().receive(notification(real_logs()), NOW)
    events = [o for o in outputs if isinstance(o, Event)]
    market = Market(sol_usd=150.0)
    market.feed(events + events)  # and once more: a second source
    view = market.token("CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump")
    assert view is not None and view.launch is not None and view.launch.slot == 435946190
    assert view.launch.creator == "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
    assert view.launch.dev_buy_tokens == 96_449_438_144_093 / 1e6 and view.launch.dev_buy_sol == 2.962962962
    assert view.dev_share == pytest.approx(96_449_438.144093 / 1e9 * 100)  # 9.6 %: a dev holding over 5 %
    assert view.first_slot_buyers == () and view.holders == 1 and view.trades == 1
    assert view.price_sol == pytest.approx((32_962_962_962 / 1e9) / (976_550_561_855_907 / 1e6))
    assert view.market_cap_usd == pytest.approx(view.price_sol * 1e9 * 150.0)
    assert view.progress == pytest.approx(96_449_438.144093 / 793_100_000 * 100)


def test_real_pumpportal_launches() -> None:
    """The captured PumpPortal frames (tests/pumpportal/captured_frames.txt): initialBuy is the dev holding."""
    sys.path.insert(0, str(TESTS / "pumpportal"))
    from pphelpers import captured, captured_lines
    from test_pp_dialect import dialect, feed

    from pumpsync.providers.base import Subscription

    d = dialect([Subscription("new_tokens"), Subscription("migrations")])
    events = [o for line in captured_lines() for o in feed(d, line) if isinstance(o, Event)]
    creates = [f for f in captured() if f.get("txType") == "create" and f.get("pool") == "pump"]  # bonk: dropped
    assert len(creates) == 2 and events
    market = Market()
    market.feed(events)
    (migration,) = [f for f in captured() if f.get("txType") == "migrate"]
    migrated = market.token(migration["mint"])
    assert migrated is not None and migrated.migrated and migrated.progress == 100.0 and migrated.launch is None
    for frame in creates:
        view = market.token(frame["mint"])
        assert view is not None and view.launch is not None
        assert view.launch.creator == frame["traderPublicKey"]
        if frame["initialBuy"]:
            assert view.dev_tokens == pytest.approx(frame["initialBuy"])
            assert view.launch.dev_buy_sol == pytest.approx(frame["solAmount"])
