"""Chaos, Solana variant: the simulated node's stream, drops / node restarts / 429s on history at
random moments, and every event of every successful transaction it streamed delivered exactly once.

Seeded: set PUMPSYNC_CHAOS_SEED to replay a run; PUMPSYNC_CHAOS_SECONDS lengthens it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import pytest

import pumpsync
import pumpsync.simulator.solana
from pumpsync.events import Event
from pumpsync.providers.base import Output
from pumpsync.providers.solana import CHANNELS, compile_filters, decode_logs
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.test_chaos import SEED, TIMINGS, Collector, run_faults

pytestmark = pytest.mark.chaos


def expected_identities(records: list[dict[str, Any]]) -> Counter[Any]:
    """The identities of the events in the node's successful transactions (failed ones never happened)."""
    filters = compile_filters({channel: {} for channel in CHANNELS})
    expected: Counter[Any] = Counter()
    for record in records:
        if record.get("err") is not None:
            continue
        out: list[Output] = []
        decode_logs(record["logs"], record["signature"], record["slot"], 0, 0, False, filters, out)
        expected.update(o.identity for o in out if isinstance(o, Event))
    return expected


def test_solana_drops_restarts_and_429s_on_history() -> None:
    rng = random.Random(SEED + 2)
    print(f"chaos seed {SEED}")

    def drop(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.drop(provider="solana")
        return "drop"

    def restart(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.restart(provider="solana", downtime=rng.uniform(0.1, 0.6))
        return "restart"

    def rest_429(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.rest_fail_next(rng.randint(1, 3), status=429, retry_after=0.2, provider="solana")
        sim.drop(provider="solana")
        return "drop+429"

    with Simulator(providers=("solana",), rate=60, seed=SEED) as sim:
        sim.pause()  # the known stream starts once the client is subscribed
        client = pumpsync.Client(
            "solana", url=sim.url("solana"), rest_url=sim.rest_url("solana"), channels=list(CHANNELS), **TIMINGS
        )
        collector = Collector(client.start())
        try:
            sim.wait_for_connections("solana", 1, subscribed=True, timeout=15)
            start = len(sim.history("solana"))
            sim.resume()
            done = run_faults(sim, collector, rng, [drop, restart, rest_429])
            sim.pause()
            collector.pump(time.monotonic() + 1.0)  # let the last reconnect and backfill begin
            expected = expected_identities(sim.history("solana")[start:])
            assert sum(expected.values()) > 0

            def complete() -> bool:
                collector.pump(time.monotonic() + 0.2)
                return sum(expected.values()) <= len(collector.events)

            wait_until(complete, timeout=40, what=f"every event after faults {done} (seed {SEED})")
            collector.pump(time.monotonic() + 0.5)  # anything extra would be a duplicate
            got = Counter(e.identity for e in collector.events)
            assert got == expected, f"seed {SEED}, faults {done}: missing {expected - got}, extra {got - expected}"
            assert client.error is None
            slots = [e.slot or 0 for e in collector.events]
            assert slots == sorted(slots), f"seed {SEED}, faults {done}: out of slot order"
        finally:
            client.close()
