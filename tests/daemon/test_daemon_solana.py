"""``pumpsync daemon --provider solana`` end to end: the simulator's Solana node into a SQLite sink,
each event of its successful transactions once, and the Solana counters on /metrics."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import FAST_FLAGS, clean_env

import pumpsync.simulator.solana  # noqa: F401 - the Solana node these tests drive: an import break fails them
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.solana.test_sim_e2e import expected


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(providers=("solana",), rate=0, seed=17) as sim:
        yield sim


def rows(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [(s, k) for s, k in conn.execute("SELECT signature, kind FROM events")]
        except sqlite3.OperationalError:  # the sink has not created its table yet
            return []


def test_daemon_writes_the_nodes_events_to_sqlite(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    args = ["--provider", "solana", "--url", sim.url("solana"), "--rest-url", sim.rest_url("solana")]
    daemon = start_daemon([*args, "--sink", f"sqlite:{db}", *FAST_FLAGS], env=clean_env())
    daemon.wait_streaming(sim, "solana")
    sim.solana_inject("failed", 2)  # counted, never written
    market = sim.emit(30) + sim.emit(1, kind="graduation")
    sim.drop("solana")  # and a gap, recovered through getSignaturesForAddress + getTransaction
    market += sim.emit(10)
    sim.wait_for_connections("solana", 1, subscribed=True)
    market += sim.emit(5)
    wanted = expected(market)
    wait_until(lambda: len(rows(db)) >= len(wanted), timeout=30, what="every event in SQLite")
    assert (daemon.sample("pumpsync_malformed_frames_total", provider="solana", reason="failed_tx") or 0) >= 2
    assert daemon.sample("pumpsync_history_outcomes_total", provider="solana", reason="ceiling") == 0
    assert daemon.stop() == 0
    got = rows(db)
    assert sorted(got) == sorted(wanted)  # each exactly once
