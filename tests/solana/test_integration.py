"""``solana`` inside the rest of pumpsync, over real sockets against the simulator's node: a
truncated log recovered through ``getTransaction``, the history source's counts in ``stats()`` and
the metrics and the dialect's reasons exported at 0 from the start."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

pytest.importorskip("pumpsync.simulator.solana")

from prometheus_client import generate_latest

from pumpsync import Client
from pumpsync.cli._render import to_text
from pumpsync.events import Event
from pumpsync.metrics import make_registry
from pumpsync.providers.base import Malformed, Refetch, Subscription
from pumpsync.providers.solana import PROGRAM_ID, Solana
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.solana.test_sim_e2e import expected, solana


def collect(client: Client, n: int) -> list[Event]:
    got: list[Event] = []

    def enough() -> bool:
        while not client.queue.empty():
            item = client.queue.get_nowait()
            assert isinstance(item, Event), item
            got.append(item)
        return len(got) >= n

    wait_until(enough, timeout=20, what=f"{n} events")
    return got


def test_a_truncated_log_asks_for_its_transaction_again() -> None:
    dialect = Solana(0, [Subscription("trades", {})])
    dialect.on_open()
    dialect.receive('{"jsonrpc":"2.0","id":1,"result":7}', 0)
    value = {"signature": "SIG", "err": None, "logs": [f"Program {PROGRAM_ID} invoke [1]", "Log truncated"]}
    frame = {
        "method": "logsNotification",
        "params": {"subscription": 7, "result": {"context": {"slot": 5}, "value": value}},
    }
    assert dialect.receive(json.dumps(frame), 0) == [Malformed("log_truncated"), Refetch("SIG", 5)]


def test_truncated_log_recovered_via_get_transaction(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim)
    sim.solana_next("truncated", 1)
    market = sim.emit(3, kind="trade")
    truncated = market[0].signature  # its live log lost every Program data line
    wanted = expected(market)
    got = collect(client, len(wanted))
    assert sorted((e.signature, e.kind) for e in got) == sorted(wanted)  # each exactly once
    assert all(e.backfill == (e.signature == truncated) for e in got)
    stats = client.stats()
    assert stats["connections"][0]["malformed"]["log_truncated"] == 1  # still counted where it was seen
    assert stats["history"]["truncated_recovered"] == 1 and stats["history"]["log_truncated"] == 0


def test_truncated_log_without_backfill_stays_a_counted_loss(
    make_client: Callable[..., Client], sim: Simulator
) -> None:
    client = solana(make_client, sim, backfill=False)
    sim.solana_next("truncated", 1)
    market = sim.emit(2, kind="trade")
    got = collect(client, len({k for k in expected(market) if k[0] != market[0].signature}))
    assert all(e.signature != market[0].signature for e in got)
    assert client.stats()["connections"][0]["malformed"]["log_truncated"] == 1


def metrics(client: Client) -> str:
    return generate_latest(make_registry(client)).decode()


def test_history_counts_in_stats_and_metrics(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim, max_gap_transactions=2)
    text = metrics(client)  # before anything happened: every known reason at 0
    for reason in ("failed_tx", "log_truncated", "unknown_event", "undecodable", "unknown_subscription"):
        assert f'pumpsync_malformed_frames_total{{connection="0",provider="solana",reason="{reason}"}} 0.0' in text
    assert 'pumpsync_filtered_frames_total{connection="0",provider="solana",reason="unmapped_event"} 0.0' in text
    for reason in ("fee_payout", "other_pool", "unknown_pool"):
        assert f'pumpsync_filtered_frames_total{{connection="0",provider="solana",reason="{reason}"}} 0.0' in text
    # layout drift: process-wide, every (event, reason) exported (at 0 unless a test drifted one)
    assert 'pumpsync_decode_drift_total{event="TradeEvent",reason="implausible_bps"}' in text
    assert 'pumpsync_decode_drift_total{event="SellEvent",reason="longer_than_known"}' in text
    for reason in ("ceiling", "unavailable", "log_truncated", "truncated_recovered", "rate_limited"):
        assert f'pumpsync_history_outcomes_total{{provider="solana",reason="{reason}"}} 0.0' in text
    assert client.stats()["history"]["ceiling"] == 0

    collect(client, len(expected(sim.emit(1, kind="trade"))))  # a position to recover from
    sim.rest_fail_next(2, 429, retry_after=0.0, provider="solana")
    sim.drop("solana")
    sim.emit(6, kind="trade")  # while the client reconnects: more than the gap's ceiling of 2
    sim.wait_for_connections("solana", 1, subscribed=True)
    wait_until(lambda: client.stats()["history"]["ceiling"] > 0, timeout=20, what="the gap's loss counted")
    history = client.stats()["history"]
    assert history["rate_limited"] >= 1
    text = metrics(client)
    assert f'pumpsync_history_outcomes_total{{provider="solana",reason="ceiling"}} {float(history["ceiling"])}' in text


def test_websocket_pings_keep_an_idle_node_socket_open(make_client: Callable[..., Client], sim: Simulator) -> None:
    sim.solana_idle_timeout(2.0)  # the node closes a socket silent for 2 s (RPC providers: a minute or more)
    client = solana(make_client, sim, ping_interval=0.2, pong_timeout=0.3, stale_timeout=10)
    conn = client.stats()["connections"]

    def open_past_the_idle_timeout() -> bool:
        nonlocal conn
        conn = client.stats()["connections"]
        return bool(conn[0]["state"] == "open" and time.time() - conn[0]["state_since"] > 3.0)

    wait_until(open_past_the_idle_timeout, timeout=20, what="a session open past the idle timeout")
    assert conn[0]["connects"] == 1 and conn[0]["pongs"] >= 3, conn[0]
    market = sim.emit(1, kind="trade")
    assert collect(client, len(expected(market)))[0].signature == market[0].signature


def test_the_demo_tells_graduation_and_migration_apart(make_client: Callable[..., Client], sim: Simulator) -> None:
    """``pumpsync demo --provider solana`` prints each event with to_text: a graduation is two events on chain."""
    client = solana(make_client, sim)
    market = sim.emit(1, kind="graduation")
    events = collect(client, len(expected(market)))
    lines = {e.raw["event"]: to_text(e) for e in events if e.raw["event"].startswith("Complete")}
    assert " GRAD " in lines["CompleteEvent"]
    assert " MIGR " in lines["CompletePumpAmmMigrationEvent"] and "liquidity" in lines["CompletePumpAmmMigrationEvent"]
