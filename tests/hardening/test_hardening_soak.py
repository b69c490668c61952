"""Long runs: a firehose nobody reads, a consumer that stops reading at 2,000 events/s, and a soak
with random faults. Each is short by default (part of every test run); ``PUMPSYNC_SOAK_SECONDS``
lengthens them (60 for the issue's minute-long variants, 600 for the ten-minute soak)::

    PUMPSYNC_SOAK_SECONDS=600 python -m pytest -m soak tests/hardening

Durations here are the scenario (how long the consumer stalls, how long faults are injected),
never a hope that something has happened: every expectation is waited for with a deadline.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hardening_support import Resources, Sample, SimProcess, soak_seconds

import pumpsync
from pumpsync.simulator import Simulator
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.soak,
    pytest.mark.timeout(120 + 3 * soak_seconds(10.0)),  # the project's 120 s per test, plus the scenario
    pytest.mark.skipif(not Resources.available(), reason="needs /proc to measure memory, descriptors, threads"),
]

MiB = 1024 * 1024


class Consumer:
    """Reads a client on its own thread; ``reading`` can be switched off (a stalled consumer)."""

    def __init__(self, client: pumpsync.Client) -> None:
        self.client = client
        self.reading = threading.Event()
        self.reading.set()
        # One 8-byte fingerprint per event received: the harness's own memory must stay flat too.
        self.fingerprints = array("q")
        self.received = 0
        self.max_slot = -1
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hardening-consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.reading.wait(0.1):
                continue
            try:
                event = self.client.get(timeout=0.1)
            except queue.Empty:
                continue
            except pumpsync.ClientClosed:
                return
            except pumpsync.PumpsyncError as exc:  # nothing fatal is expected: the test checks the list
                self.errors.append(exc)
                return
            self.received += 1
            if event.slot is not None:
                self.max_slot = max(self.max_slot, event.slot)
            if event.signature is not None:
                self.fingerprints.append(fingerprint(event.kind, event.signature))

    def stop(self) -> None:
        self._stop.set()
        self.reading.set()
        self._thread.join(5)

    def wait_for_all(self, expected: list[list[str]], what: str, timeout: float = 90.0) -> None:
        """Until every expected (kind, signature) has been received."""
        want = {fingerprint(kind, sig) for kind, sig in expected}
        assert want, "nothing was expected: the scenario produced no events"

        def missing() -> int:
            return len(want - set(self.fingerprints))

        wait_until(lambda: not missing(), timeout=timeout, interval=0.5, what=f"{what}: {missing()} missing")

    def duplicates(self, expected: list[list[str]]) -> int:
        want = {fingerprint(kind, sig) for kind, sig in expected}
        counts = Counter(fp for fp in self.fingerprints if fp in want)
        return sum(1 for n in counts.values() if n > 1)


def fingerprint(kind: str, signature: str) -> int:
    return hash((kind, signature))


@dataclass
class Sampler:
    """Samples this process's resources every ``every`` seconds on its own thread."""

    every: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    checks: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._run, name="hardening-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(Resources.sample())
            for check in self.checks:
                try:
                    check()
                except AssertionError as exc:
                    self.failures.append(str(exc))

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(5)
        return self.samples


def summary(what: str, samples: list[Sample], **numbers: Any) -> None:
    """One line of numbers for the record (shown with ``pytest -s``)."""
    warm, last = samples[len(samples) // 3], samples[-1]
    cpu = (last.cpu - samples[0].cpu) / max(1e-9, last.wall - samples[0].wall)
    extra = " ".join(f"{k}={v}" for k, v in numbers.items())
    print(
        f"\n[{what}] rss {warm.rss / MiB:.0f}->{last.rss / MiB:.0f} MiB, fds {warm.fds}->{last.fds}, "
        f"threads {warm.threads}->{last.threads}, cpu {cpu:.0%} {extra}"
    )


def assert_flat(samples: list[Sample], rss_slack: int, what: str) -> None:
    """From the end of the warm-up (first third) to the end: memory, descriptors, threads stay put."""
    assert len(samples) >= 3, "too few samples"
    warm, last = samples[len(samples) // 3], samples[-1]
    peak_fds = max(s.fds for s in samples[len(samples) // 3 :])
    peak_threads = max(s.threads for s in samples[len(samples) // 3 :])
    assert last.rss - warm.rss < rss_slack, f"{what}: RSS grew {(last.rss - warm.rss) / MiB:.1f} MiB"
    assert peak_fds <= warm.fds + 8, f"{what}: descriptors {warm.fds} -> peak {peak_fds}"
    assert peak_threads <= warm.threads + 4, f"{what}: threads {warm.threads} -> peak {peak_threads}"


# ---------------------------------------------------------------- a frame every millisecond, nobody reading


def test_a_frame_every_millisecond_while_the_consumer_never_reads(make_client) -> None:
    seconds = soak_seconds(6.0)
    count = int(1000 * seconds)
    with Simulator(providers=("openpump",), rate=0, seed=21) as sim:
        client = make_client(
            "openpump",
            sim.url("openpump"),
            queue_size=1000,
            dedup_size=5000,
            ping_interval=0.5,
            pong_timeout=2.0,
            stale_timeout=5.0,
        ).start()
        sim.wait_for_connections("openpump", 1, subscribed=True, timeout=10)
        pongs_before = client.stats()["connections"][0]["pongs"]
        sampler = Sampler()
        sampler.checks.append(lambda: _bounded(client, 1000))
        sent = sim.blast(count, provider="openpump", rate=1000.0, timeout=seconds * 3 + 30)
        wait_until(lambda: client.stats()["delivered"] >= sent, timeout=30, what="every frame read off the socket")
        samples = sampler.stop()
        stats = client.stats()
        conn = stats["connections"][0]
        assert sent == count and stats["delivered"] == count
        assert stats["dropped"] == count - 1000 and stats["queue_depth"] == 1000  # oldest dropped, counted
        assert conn["connects"] == 1 and conn["disconnects"] == {} and conn["malformed"] == {}
        assert conn["pongs"] > pongs_before  # heartbeats went on under the firehose: no deadlock
        assert not sampler.failures, sampler.failures[:3]
        summary("firehose", samples, frames=sent, dropped=stats["dropped"], pongs=conn["pongs"] - pongs_before)
        assert_flat(samples, 48 * MiB, "firehose")
        kept = [client.get(timeout=1) for _ in range(1000)]
        assert all(e.kind == "trade" for e in kept)


def _bounded(client: pumpsync.Client, capacity: int) -> None:
    depth = client.stats()["queue_depth"]
    assert depth <= capacity, f"queue depth {depth} over its capacity {capacity}"


# ---------------------------------------------------------------- the consumer stops reading at 2,000 events/s


def test_slow_consumer_at_2000_events_per_second_then_recovers_and_backfills(make_client) -> None:
    stall = soak_seconds(6.0)
    capacity = 4000
    with SimProcess(providers=["anaxer"], rate=2000, seed=22) as sim:
        client = make_client(
            "anaxer",
            sim.url("anaxer"),
            channels={"creations": {}, "trades": {}},
            queue_size=capacity,
            dedup_size=50_000,
            ping_interval=0.5,
            pong_timeout=2.0,
            stale_timeout=5.0,
        ).start()
        sim.wait_for_subscribed("anaxer")
        consumer = Consumer(client)
        try:
            wait_until(lambda: consumer.received >= 2000, timeout=20, what="a steady stream")
            first_slot = consumer.max_slot  # everything after this slot must arrive
            consumer.reading.clear()  # the consumer stops reading
            pongs = client.stats()["connections"][0]["pongs"]
            sampler = Sampler()
            sampler.checks.append(lambda: _bounded(client, capacity))
            stall_ends = time.monotonic() + stall
            while time.monotonic() < stall_ends:  # the scenario: a stall of `stall` seconds
                assert client.connected, "the connection must survive a stalled consumer"
                time.sleep(0.2)
            samples = sampler.stop()
            stats = client.stats()
            assert stats["dropped"] > 0 and stats["queue_depth"] <= capacity  # overflow happened, was counted
            assert stats["connections"][0]["pongs"] > pongs  # heartbeats kept going: no deadlock
            assert not sampler.failures, sampler.failures[:3]
            summary("stalled consumer", samples, stall_s=stall, dropped=stats["dropped"], depth=stats["queue_depth"])
            assert_flat(samples, 32 * MiB, "stalled consumer")
            consumer.reading.set()  # the consumer resumes
            received = consumer.received
            wait_until(lambda: consumer.received > received + capacity, timeout=30, what="the stream flowing again")
            sim.call("pause")
            expected = sim.call("expected_events", first_slot)
            consumer.wait_for_all(expected, "the gap back-filled")
            backfill = client.stats()["backfill"]
            print(
                f"[stalled consumer] {len(expected)} events after the stall began, all delivered; backfill {backfill}"
            )
            connection = client.stats()["connections"][0]
            assert connection["connects"] == 1 and not consumer.errors, (connection["disconnects"], consumer.errors)
        finally:
            consumer.stop()


# ---------------------------------------------------------------- soak with random faults


@dataclass
class Fault:
    name: str
    apply: Callable[[SimProcess], None]
    restart: bool = False


def _faults(rng: random.Random) -> list[Fault]:
    malformed = ["not_json", "json_array", "unknown_type", "missing_fields", "binary"]
    return [
        Fault("drop", lambda s: s.call("drop", provider="anaxer")),
        Fault("close 1011", lambda s: s.call("close", 1011, provider="anaxer")),
        Fault("close 1001", lambda s: s.call("close", 1001, provider="anaxer")),
        Fault(
            "503 x2 then drop",
            lambda s: (s.call("reject_next", 2, provider="anaxer", status=503), s.call("drop", provider="anaxer")),
        ),
        Fault("stall", lambda s: s.call("stall", provider="anaxer")),
        Fault("malformed", lambda s: s.call("send_malformed", rng.choice(malformed), provider="anaxer")),
        Fault("oversized", lambda s: s.call("send_malformed", "oversized", provider="anaxer", size=300_000)),
        Fault(
            "REST failures, then drop",
            lambda s: (
                s.call("rest_fail_next", 3, status=503, retry_after=0.05),
                s.call("drop", provider="anaxer"),
            ),
        ),
        Fault("restart", lambda s: s.call("restart", provider="anaxer", downtime=rng.uniform(0.2, 1.5)), restart=True),
    ]


def test_soak_with_random_faults_loses_nothing_and_stays_flat(make_client, caplog) -> None:
    duration = soak_seconds(10.0)
    backoff_max = 1.0
    seed = int(time.time())
    rng = random.Random(seed)
    caplog.set_level(logging.INFO, logger="pumpsync")
    with SimProcess(providers=["anaxer"], rate=200, seed=23) as sim:
        client = make_client(
            "anaxer",
            sim.url("anaxer"),
            channels={"creations": {}, "trades": {}},
            backoff_initial=0.1,
            backoff_max=backoff_max,
            stale_timeout=2.0,
            pong_timeout=1.0,
            ping_interval=0.5,
            max_frame_size=256 * 1024,
            # A de-dup window that fills early in a long run: memory must then stay flat. (The default,
            # 200,000 identities, takes ~90 MB and more than the whole short run to fill.)
            queue_size=5000,
            dedup_size=20_000,
        ).start()
        sim.wait_for_subscribed("anaxer")
        consumer = Consumer(client)
        sampler = Sampler(every=max(0.5, duration / 100))
        recoveries: list[float] = []
        injected: list[str] = []
        try:
            wait_until(lambda: consumer.received >= 100, what="a steady stream")
            first_slot = consumer.max_slot
            faults = _faults(rng)
            ends = time.monotonic() + duration
            while time.monotonic() < ends:
                fault = rng.choice(faults)
                injected.append(fault.name)
                fault.apply(sim)
                if fault.restart:  # healthy again within backoff_max + 1 s of the server's return
                    back = time.monotonic()
                    wait_until(lambda: client.connected, timeout=backoff_max + 1.0, what=f"healthy after {fault.name}")
                    recoveries.append(time.monotonic() - back)
                # The next fault once the client is streaming again.
                target = consumer.received + 20
                wait_until(
                    lambda target=target: client.connected and consumer.received > target,
                    timeout=30,
                    what=f"streaming again after {fault.name} (seed {seed})",
                )
                time.sleep(rng.uniform(0.1, 0.8))  # the scenario's pacing, not a wait for anything
            samples = sampler.stop()
            sim.call("pause")
            expected = sim.call("expected_events", first_slot)
            consumer.wait_for_all(expected, f"every event (seed {seed}, faults {injected})")
        finally:
            consumer.stop()
    assert not consumer.errors and client.error is None
    assert sum(client.stats()["connections"][0]["disconnects"].values()) >= 1, injected
    dupes = consumer.duplicates(expected)
    assert not dupes, f"{dupes} events delivered more than once (seed {seed})"
    delays = [
        float(m.group(1)) for r in caplog.records if (m := re.search(r"reconnecting in ([0-9.]+) s", r.getMessage()))
    ]
    assert delays and all(0 <= d <= backoff_max + 0.005 for d in delays), delays
    assert all(r <= backoff_max + 1.0 for r in recoveries), recoveries
    summary(
        "soak",
        samples,
        seconds=duration,
        faults=len(injected),
        events=len(expected),
        max_delay=max(delays),
        max_recovery=f"{max(recoveries, default=0):.2f}s",
        restarts=len(recoveries),
    )
    assert_flat(samples, 32 * MiB, "soak")
