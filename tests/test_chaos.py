"""Chaos: a known stream, faults at random moments, and every event delivered exactly once.

Seeded: set PUMPSYNC_CHAOS_SEED to replay a run; PUMPSYNC_CHAOS_SECONDS lengthens it.
"""

from __future__ import annotations

import os
import queue
import random
import time
from collections import Counter
from typing import Any

import pytest

import pumpsync
from pumpsync.simulator import Simulator
from tests.conftest import FAST, wait_until

pytestmark = pytest.mark.chaos

SECONDS = float(os.environ.get("PUMPSYNC_CHAOS_SECONDS", "8"))
SEED = int(os.environ.get("PUMPSYNC_CHAOS_SEED", str(random.randrange(1 << 30))))
TIMINGS = {**FAST, "ping_interval": 0.3, "pong_timeout": 0.5, "stale_timeout": 1.0, "limited_backoff": 0.4}


class Collector:
    """Reads the client's queue the way a user would, keeping everything it got."""

    def __init__(self, client: pumpsync.Client) -> None:
        self.client = client
        self.events: list[pumpsync.Event] = []

    def pump(self, until: float) -> None:
        while time.monotonic() < until:
            try:
                self.events.append(self.client.get(timeout=0.05))
            except queue.Empty:
                pass


def run_faults(sim: Simulator, collector: Collector, rng: random.Random, faults: list[Any]) -> list[str]:
    done = []
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        collector.pump(time.monotonic() + rng.uniform(0.3, 1.0))
        fault = rng.choice(faults)
        done.append(fault(sim, collector.client, collector))
    return done


def test_anaxer_one_connection_with_gap_recovery() -> None:
    rng = random.Random(SEED)
    print(f"chaos seed {SEED}")
    channels = {"creations": {}, "trades": {}, "graduations": {}}

    def reconnects(client: pumpsync.Client) -> int:
        return int(client.stats()["connections"][0]["connects"])

    def drop(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.drop(provider="anaxer")
        return "drop"

    def half_open(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        before = reconnects(client)
        sim.stall(provider="anaxer")
        deadline = time.monotonic() + 10
        while reconnects(client) == before and time.monotonic() < deadline:
            c.pump(time.monotonic() + 0.05)
        sim.unstall(provider="anaxer")
        return "half-open"

    def restart(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.restart(provider="anaxer", downtime=rng.uniform(0.1, 0.6))
        return "restart"

    def rate_limited(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.close(4002, provider="anaxer")
        return "4002"

    def rest_429(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.rest_fail_next(2, status=429, retry_after=0.2)
        sim.drop(provider="anaxer")
        return "drop+429"

    with Simulator(providers=("anaxer",), rate=60, seed=SEED) as sim:
        sim.pause()  # the known stream starts once the client is subscribed
        client = pumpsync.Client("anaxer", api_key="chaos", url=sim.url("anaxer"), channels=channels, **TIMINGS)
        collector = Collector(client.start())
        try:
            sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=15)
            wait_until(lambda: len(sim.connections("anaxer")[0].subscriptions) == 3, what="3 subscriptions")
            start = len(sim.history("anaxer"))
            sim.resume()
            done = run_faults(sim, collector, rng, [drop, half_open, restart, rate_limited, rest_429])
            sim.pause()
            collector.pump(time.monotonic() + 1.0)  # let the last reconnect and backfill begin
            expected = Counter(
                (r["type"], r["signature"], r.get("side"))
                for r in sim.history("anaxer")[start:]
                if r["type"] in ("created", "swap", "graduated")
            )
            kinds = {"new_token": "created", "trade": "swap", "graduation": "graduated"}

            def complete() -> bool:
                collector.pump(time.monotonic() + 0.2)
                return sum(expected.values()) <= len(collector.events)

            try:
                wait_until(complete, timeout=40, what=f"every event after faults {done} (seed {SEED})")
            except BaseException:
                got = Counter((kinds[e.kind], e.signature, e.side) for e in collector.events)
                missing = expected - got
                slots = {(r["type"], r.get("signature"), r.get("side")): r["slot"] for r in sim.history("anaxer")}
                print("missing slots", sorted(slots[k] for k in missing), "stats", client.stats())
                low = min(slots[k] for k in missing)
                print("missing", [(k[0], k[2], slots[k]) for k in missing])
                print(
                    "got near",
                    [(e.slot, e.kind, e.side, e.backfill) for e in collector.events if abs((e.slot or 0) - low) < 4],
                )
                print(
                    "history near",
                    [
                        (r["slot"], r["type"], r.get("side"))
                        for r in sim.history("anaxer")
                        if abs(r["slot"] - low) < 4 and r["type"] != "price"
                    ],
                )
                raise
            collector.pump(time.monotonic() + 0.5)  # anything extra would be a duplicate
            got = Counter((kinds[e.kind], e.signature, e.side) for e in collector.events)
            assert got == expected, f"seed {SEED}, faults {done}: missing {expected - got}, extra {got - expected}"
            assert client.error is None
        finally:
            client.close()


def test_openpump_two_connections_faults_never_both() -> None:
    rng = random.Random(SEED + 1)
    print(f"chaos seed {SEED}")

    def both_open(sim: Simulator, client: pumpsync.Client, c: Collector) -> None:
        def ready() -> bool:
            c.pump(time.monotonic() + 0.02)
            return (
                all(x["state"] == "open" for x in client.stats()["connections"])
                and len(sim.connections("openpump")) == 2
            )

        wait_until(ready, timeout=15, what="both connections open again")

    def one(sim: Simulator) -> int:
        return sim.connections("openpump")[rng.randrange(2)].index

    def drop(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        sim.drop(provider="openpump", index=one(sim))
        both_open(sim, client, c)
        return "drop"

    def half_open(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        def connects() -> int:
            return sum(x["connects"] for x in client.stats()["connections"])

        before = connects()
        sim.stall(provider="openpump", index=one(sim))
        wait_until(lambda: c.pump(time.monotonic() + 0.02) or connects() > before, timeout=15, what="stale detected")
        sim.unstall(provider="openpump")
        both_open(sim, client, c)
        return "half-open"

    def close(sim: Simulator, client: pumpsync.Client, c: Collector) -> str:
        code = rng.choice([1000, 1001, 1011])
        sim.close(code, provider="openpump", index=one(sim))
        both_open(sim, client, c)
        return str(code)

    # Enterprise plan: the server may still count a half-open socket for a while after we left it.
    with Simulator(providers=("openpump",), rate=60, seed=SEED, enrich_delay=0.05) as sim:
        sim.pause()  # the known stream starts once both connections are up
        client = pumpsync.Client("openpump", api_key="chaos", url=sim.url("openpump"), connections=2, **TIMINGS)
        collector = Collector(client.start())
        try:
            both_open(sim, client, collector)
            start = len(sim.history("openpump"))
            sim.resume()
            done = run_faults(sim, collector, rng, [drop, half_open, close])
            sim.pause()
            # token_enriched follows new_token by enrich_delay, even after the pause
            sim.wait_for(
                lambda: (
                    len({h["mint"] for h in sim.history("openpump") if h["type"] == "new_token"})
                    == len({h["mint"] for h in sim.history("openpump") if h["type"] == "token_enriched"})
                )
            )
            expected = Counter((h["type"], h["signature"]) for h in sim.history("openpump")[start:])

            def complete() -> bool:
                collector.pump(time.monotonic() + 0.2)
                return sum(expected.values()) <= len(collector.events)

            wait_until(complete, timeout=30, what=f"every event after faults {done} (seed {SEED})")
            collector.pump(time.monotonic() + 0.5)
            before = {(h["type"], h["signature"]) for h in sim.history("openpump")[:start]}
            got = Counter(
                key
                for key in ((e.side if e.kind == "trade" else e.kind, e.signature) for e in collector.events)
                if key not in before  # an enrichment of a launch from before the known stream began
            )
            assert got == expected, f"seed {SEED}, faults {done}: missing {expected - got}, extra {got - expected}"
            firsts = [c["first_deliveries"] for c in client.stats()["connections"]]
            assert all(f > 0 for f in firsts) and sum(firsts) == sum(expected.values())
        finally:
            client.close()
