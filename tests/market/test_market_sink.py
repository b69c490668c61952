"""The daemon's `candles` sink: closed candles to a SQLite table of their own or JSON Lines of kind candle."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from mkthelpers import MINT, T0, trade

import pumpsync
from pumpsync.daemon.sinks import build_sinks, parse_sink
from pumpsync.daemon.sinks.candles import CandleSink
from pumpsync.market import Market, load_candles
from tests.conftest import wait_until

TESTS = Path(__file__).resolve().parents[1]


def events() -> list[pumpsync.Event]:
    # one trade every 700 ms for 3 min, and a late one (backfill) into the first whole minute
    out = [trade(f"W{i}", "buy", 1e6, 0.01 + i / 1e4, ms=T0 + i * 700, sig=f"s{i}") for i in range(260)]
    out.append(trade("late", "sell", 5e5, 0.02, ms=T0 + 61_000, sig="late"))
    return out


def run_sink(sink: CandleSink) -> None:
    sink.start()
    for event in events():
        assert sink.offer(event)
    sink.close(time.monotonic() + 10)
    assert sink.join(10)


@pytest.mark.parametrize("name", ["c.db", "c.jsonl"])
def test_the_sink_writes_whole_closed_candles_once(tmp_path: Path, name: str) -> None:
    (sink,) = build_sinks([parse_sink(f"candles:{tmp_path / name}")])
    assert isinstance(sink, CandleSink)
    run_sink(sink)
    market = Market()
    market.feed(events())
    expected = {
        (c.interval, c.start_ms): c
        for interval in ("1s", "1m", "5m")
        for c in market.candles(MINT, interval)
        if c.closed and c.start_ms >= T0  # before T0: partial (the sink began mid-interval), not written
    }
    if name.endswith(".db"):
        db = sqlite3.connect(tmp_path / name)
        stored = {(c.interval, c.start_ms): c for i in ("1s", "1m", "5m") for c in load_candles(db, MINT, i)}
        assert {k: replace(c, revision=0) for k, c in stored.items()} == expected
        assert stored[("1m", T0 - T0 % 60_000 + 60_000)].sells == 1  # the late trade's revision won
    else:
        lines = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]
        assert {line["kind"] for line in lines} == {"candle"}
        newest = {}
        for line in lines:  # a revision replaces the line before it
            newest[(line["interval"], line["start_ms"])] = line
        assert {k: (v["open"], v["close"], v["buys"], v["sells"]) for k, v in newest.items()} == {
            k: (c.open, c.close, c.buys, c.sells) for k, c in expected.items()
        }
    assert sink.candles_skipped >= 2  # the 1 min and 5 min candles that began before the first event
    assert sink.dropped == 0 and sink.failures == 0


def test_the_daemon_writes_candles_next_to_its_events(tmp_path: Path) -> None:
    sys.path.insert(0, str(TESTS / "daemon"))
    from daemonhelpers import DaemonProc

    daemon = DaemonProc(
        ["--demo", "--provider", "anaxer", "--sink", "candles:candles.db", "--sink", "sqlite:events.db"], tmp_path
    )
    try:
        daemon.wait_ready(60)

        def candles() -> int:
            try:
                db = sqlite3.connect(tmp_path / "candles.db")
                return int(db.execute("SELECT COUNT(*) FROM candles").fetchone()[0])
            except sqlite3.OperationalError:  # not created yet
                return 0

        wait_until(lambda: candles() >= 20, 60, "closed candles in the candles table")
    finally:
        assert daemon.stop() == 0, daemon.stderr
    market = Market()
    with pumpsync.connect("replay", url=f"file:{tmp_path / 'events.db'}", speed=0) as replay:
        market.feed(replay)
    db = sqlite3.connect(tmp_path / "candles.db")
    rows = db.execute("SELECT DISTINCT mint, interval FROM candles").fetchall()
    compared = 0
    for mint, interval in rows:
        ours = {c.start_ms: c for c in market.candles(mint, interval)}
        for stored in load_candles(db, mint, interval):
            assert replace(stored, revision=0) == ours[stored.start_ms]
            compared += 1
    assert compared >= 20
