"""Chaos across sources: OpenPump, Anaxer twice (one server, two sources) and PumpPortal where
it is simulated, random faults on each; every event that at least one source delivered reaches
the consumer exactly once.

Seeded: set PUMPSYNC_CHAOS_SEED to replay a run; PUMPSYNC_CHAOS_SECONDS lengthens it.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import pumpsync
from pumpsync import Source
from pumpsync.events import Event
from pumpsync.simulator import Simulator
from pumpsync.simulator.simulator import SERVERS
from tests.conftest import FAST, wait_until

pytestmark = pytest.mark.chaos

SECONDS = float(os.environ.get("PUMPSYNC_CHAOS_SECONDS", "8"))
SEED = int(os.environ.get("PUMPSYNC_CHAOS_SEED", str(random.randrange(1 << 30))))
TIMINGS = {**FAST, "ping_interval": 0.3, "pong_timeout": 0.5, "stale_timeout": 1.0, "limited_backoff": 0.4}
CHANNELS = {"creations": {}, "trades": {}, "graduations": {}}
PROVIDERS = tuple(p for p in ("openpump", "anaxer", "pumpportal") if p in SERVERS)
Fault = Callable[[Simulator], str]


class Handed:
    """Every identity any source handed to the delivery (live or back-filled): what "at least one
    source delivered" means. It taps each source's delivery, the one seam between the two."""

    def __init__(self, client: pumpsync.Client) -> None:
        self.identities: set[Any] = set()
        self._lock = threading.Lock()
        for member in client.members.values():
            delivery = member._delivery
            delivery.deliver_all = self._tap(delivery.deliver_all)  # type: ignore[method-assign]
            delivery.release_backfill = self._tap(delivery.release_backfill)  # type: ignore[method-assign]

    def _tap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def tapped(events: Iterable[Event], *args: Any, **kwargs: Any) -> Any:
            events = list(events)
            with self._lock:
                self.identities.update(e.identity for e in events if e.identity is not None)
            return method(events, *args, **kwargs)

        return tapped

    def snapshot(self) -> set[Any]:
        with self._lock:
            return set(self.identities)


def test_several_sources_with_faults_on_each_deliver_each_event_once() -> None:
    rng = random.Random(SEED)
    print(f"chaos seed {SEED}")
    client: pumpsync.Client
    got: list[Event] = []

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                got.append(client.get(timeout=0.02))
            except queue.Empty:
                pass

    def conn_of(sim: Simulator, provider: str) -> int | None:
        conns = sim.connections(provider)
        return rng.choice(conns).index if conns else None

    def drop(sim: Simulator) -> str:
        provider = rng.choice(PROVIDERS)
        sim.drop(provider=provider, index=conn_of(sim, provider))
        return f"drop {provider}"

    def stall(sim: Simulator) -> str:
        provider = rng.choice(PROVIDERS)
        index = conn_of(sim, provider)
        if index is None:
            return "stall: nothing open"
        before = connects()
        sim.stall(provider=provider, index=index)
        wait_until(lambda: pump(0.02) or connects() > before, timeout=15, what="the stall detected")
        sim.unstall(provider=provider)
        return f"stall {provider}"

    def restart(sim: Simulator) -> str:
        provider = rng.choice(PROVIDERS)
        sim.restart(provider=provider, downtime=rng.uniform(0.1, 0.6))
        return f"restart {provider}"

    def close(sim: Simulator) -> str:
        provider = rng.choice(PROVIDERS)
        sim.close(rng.choice([1001, 1011]), provider=provider, index=conn_of(sim, provider))
        return f"close {provider}"

    def connects() -> int:
        return sum(c["connects"] for m in client.members.values() for c in m.stats()["connections"])

    faults: list[Fault] = [drop, stall, restart, close]
    with Simulator(providers=PROVIDERS, rate=40, seed=SEED, enrich_delay=0.05) as sim:
        sim.pause()  # the stream starts once every source is subscribed
        sim.set_feed("openpump", delay=(0.0, 0.05), loss=0.1)
        sim.set_feed("anaxer", delay=(0.02, 0.1), loss=0.1)
        anaxer = {"url": sim.url("anaxer"), "rest_url": sim.rest_url("anaxer"), "channels": CHANNELS}
        sources = [
            Source("openpump", api_key="chaos-op", url=sim.url("openpump")),
            Source("anaxer", api_key="chaos-ax", **anaxer),
            Source("anaxer", api_key="chaos-ax2", **anaxer),
        ]
        if "pumpportal" in PROVIDERS:
            sim.set_feed("pumpportal", delay=(0.0, 0.15), loss=0.1)
            sources.append(Source("pumpportal", url=sim.url("pumpportal")))
        client = pumpsync.Client(sources=sources, **TIMINGS)
        handed = Handed(client)

        client.start()
        done: list[str] = []
        try:
            sim.wait_for_connections("openpump", 1, timeout=15)
            sim.wait_for_connections("anaxer", 2, subscribed=True, timeout=15)
            if "pumpportal" in PROVIDERS:
                sim.wait_for_connections("pumpportal", 1, subscribed=True, timeout=15)
            wait_until(lambda: all(len(c.subscriptions) == 3 for c in sim.connections("anaxer")), what="subscribed")
            sim.resume()
            end = time.monotonic() + SECONDS
            while time.monotonic() < end:
                pump(rng.uniform(0.3, 1.0))
                done.append(rng.choice(faults)(sim))
            sim.pause()

            def caught_up() -> bool:
                pump(0.2)
                return handed.snapshot() <= {e.identity for e in got}

            wait_until(caught_up, timeout=40, what=f"every handed-over event after {done} (seed {SEED})")
            pump(0.5)  # anything more would be a duplicate
            counts = Counter(e.identity for e in got)
            twice = {k: n for k, n in counts.items() if n > 1}
            assert not twice, f"seed {SEED}, faults {done}: delivered more than once: {twice}"
            assert set(counts) == handed.snapshot(), f"seed {SEED}, faults {done}"
            assert client.error is None and not client.failed_sources
            kinds = Counter(e.kind for e in got)
            assert kinds["new_token"] and kinds["trade"], kinds
        finally:
            client.close()
        assert client.race is not None
        print(client.race.summary())
