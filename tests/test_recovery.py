"""Gap recovery under stress (issue 18, items 1 and 11): gaps larger than the queue, huge pages,
cursors that never end. Real sockets: the simulator's stream, its REST or a small REST server."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from pumpsync import Client, Event
from tests.conftest import wait_until

TYPE_OF_KIND = {"new_token": "created", "trade": "swap", "graduation": "graduated"}


def key_of_event(event: Event) -> tuple[str, str, str | None]:
    return (TYPE_OF_KIND[event.kind], event.signature or "", event.side)


def expected_of(sim: Any) -> list[tuple[str, str, str | None]]:
    return [
        (r["type"], r["signature"], r.get("side"))
        for r in sim.history("anaxer")
        if r["type"] in ("created", "swap", "graduated")
    ]


def consume(
    client: Client, until: Callable[[list[Event]], bool], on_event: Callable[[int], None] | None = None
) -> list[Event]:
    """Read as fast as possible until ``until(events)``; checks the bounds on every event."""
    events: list[Event] = []
    capacity = client.config.queue_size
    while not until(events):
        events.append(client.get(timeout=20))
        stats = client.stats()
        assert stats["queue_depth"] <= capacity and client.raw_stats.held <= capacity
        if on_event is not None:
            on_event(len(events))
    return events


def test_a_gap_many_times_the_queue_arrives_exactly_once_with_live_events_meanwhile(sim, make_client) -> None:
    """18.1: the gap is released paced to the queue's room, page by page, instead of overflowing
    the queue and fetching everything again (which delivered duplicates and lost events)."""
    sim.emit(1500)  # with followers: about 2,000 records, 20 times the queue
    first_slot = min(r["slot"] for r in sim.history("anaxer"))
    client = make_client(
        "anaxer",
        sim.url("anaxer"),
        channels={"creations": {}, "trades": {}, "graduations": {}},
        since=first_slot,
        queue_size=100,
        dedup_size=200,
    ).start()
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    emitted = threading.Event()

    def live_meanwhile(received: int) -> None:
        if received == 500 and not emitted.is_set():  # live events while the gap is still coming
            emitted.set()
            sim.emit(300)  # more than the held bound (the queue size): the recovery pages on past them

    total = len(expected_of(sim))
    events = consume(client, lambda got: len(got) >= total and emitted.is_set(), live_meanwhile)
    total = len(expected_of(sim))
    events += consume(client, lambda got: len(events) + len(got) >= total)
    keys = [key_of_event(e) for e in events]
    assert len(set(keys)) == len(keys), "an event arrived twice"
    assert sorted(keys) == sorted(expected_of(sim))
    stats = client.stats()
    assert stats["dropped"] == 0 and stats["backfill"]["failures"] == 0
    assert client.queue.qsize() == 0


def _created(i: int) -> dict[str, Any]:
    return {"type": "created", "mint": f"M{i}", "signature": f"S{i}", "slot": 10 + i // 4, "name": "x"}


def test_one_huge_rest_page_is_fetched_once_and_delivered_exactly_once(sim, make_client, rest) -> None:
    """18.1: a 20,000-item page (200 times the queue) was re-fetched and re-delivered again and again."""
    records = [_created(i) for i in range(20_000)]
    rest.pages = staticmethod(lambda path, query: records if path == "/v1/creations" else [])
    client = make_client(
        "anaxer", sim.url("anaxer"), channels={"creations": {}}, since=10, queue_size=100, rest_url=rest.url
    ).start()
    events = consume(client, lambda got: len(got) >= len(records))
    assert [e.signature for e in events] == [r["signature"] for r in records]
    stats = client.stats()
    assert stats["dropped"] == 0 and stats["duplicates"] == 0
    assert rest.requests == [rest.requests[0]] and "since=10" in rest.requests[0]  # one request, never again


def test_a_repeated_next_cursor_is_detected_counted_and_bounded(sim, make_client, rest) -> None:
    """18.11: a ``next`` cursor that never changes kept one fetch going for 10,000 pages."""

    def pages(path: str, query: dict[str, list[str]]) -> Any:
        if path != "/v1/creations":
            return []
        return {"data": [_created(1), _created(2)], "next": "same-cursor-forever"}

    rest.pages = staticmethod(pages)
    client = make_client(
        "anaxer", sim.url("anaxer"), channels={"creations": {}}, since=10, rest_url=rest.url, backoff_max=30
    ).start()
    events = consume(client, lambda got: len(got) >= 2)
    assert [e.signature for e in events] == ["S1", "S2"]
    wait_until(lambda: client.stats()["backfill"]["failures"] == 1, what="the failure counted")
    # The first page, then the cursor's page once: the repeat is seen at once (the retry is 15-30 s away).
    assert len(rest.requests) == 2


def test_a_drop_during_a_recovery_keeps_slot_order(sim, make_client, rest) -> None:
    """A second outage while a gap is being fetched: the live events held meanwhile come back in the
    history followed by later slots that the live stream missed. Every event once, in slot order
    (main f7b0f32 put those held live copies after the later slots)."""
    gate = threading.Event()

    def pages(path: str, query: dict[str, list[str]]) -> Any:  # the simulator's REST, once the gate opens
        gate.wait(30)
        url = f"{sim.rest_url('anaxer')}{path}?{urlencode({**query, 'key': ['test-key']}, doseq=True)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    rest.pages = staticmethod(pages)
    channels = {"creations": {}, "trades": {}, "graduations": {}}
    client = make_client("anaxer", sim.url("anaxer"), channels=channels, rest_url=rest.url).start()

    def outage(emit: int) -> None:
        sim.reject_next(3, provider="anaxer", status=503)
        before = client.stats()["connections"][0]["connects"]
        sim.drop(provider="anaxer")
        sim.emit(emit)  # missed live: only the history has them
        wait_until(lambda: client.stats()["connections"][0]["connects"] > before, what="a reconnection")
        sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)

    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    sim.emit(5)
    got = consume(client, lambda got: len(got) >= len(expected_of(sim)))
    outage(10)
    wait_until(lambda: rest.requests, what="the recovery's fetch (held at the gate)")
    sim.emit(5)  # live while the gap is fetched: held
    wait_until(lambda: client.raw_stats.held > 0, what="held live events")
    held_slot = max(r["slot"] for r in sim.history("anaxer"))
    wait_until(lambda: sim._market.current_slot > held_slot, what="the next slot")  # no public clock
    outage(10)  # later slots, missed again: a second gap while the first is still being fetched
    sim.emit(3)
    gate.set()
    got += consume(client, lambda got_now: len(got) + len(got_now) >= len(expected_of(sim)))
    keys = [key_of_event(e) for e in got]
    assert len(set(keys)) == len(keys), "an event arrived twice"
    assert sorted(keys) == sorted(expected_of(sim))
    slots = [e.slot or 0 for e in got]
    assert slots == sorted(slots), [(e.slot, e.backfill) for e in got]
    assert client.stats()["dropped"] == 0 and client.queue.qsize() == 0


class _BrokenHistory:
    """A history source whose every answer breaks in a way nobody foresaw (no network: the
    failures a hostile server causes are in tests/solana/test_hostile_history.py)."""

    stream_wide = True

    def __init__(self, refuse_after: int) -> None:
        self.fetches = 0
        self.refuse_after = refuse_after  # fetches; then ``recoverable`` breaks too
        self.refuse_channels = False

    def recoverable(self, channel: str) -> bool:
        if self.refuse_channels:
            raise KeyError(channel)  # outside a fetch: the thread's own last resort must catch it
        return True

    def fetch(self, channels: Any, since: Any, stop: threading.Event) -> Any:
        self.fetches += 1
        self.refuse_channels = self.fetches >= self.refuse_after
        raise ZeroDivisionError("unforeseen")
        yield []

    def close(self) -> None:
        pass


def test_no_error_ends_the_recovery_thread_and_every_gap_gets_an_outcome() -> None:
    """22.2 (the rule): any exception in the recovery thread is caught and counted, the hold ends,
    the gap is reported; the thread goes on to the next gap."""
    from pumpsync._delivery import Delivery
    from pumpsync._recovery import GapRecovery
    from pumpsync._stats import ClientStats, ConnectionStats
    from pumpsync.config import make_config
    from pumpsync.providers.base import Subscription

    config = make_config(
        "solana", url="ws://127.0.0.1:9/", since=5, backoff_initial=0.01, backoff_max=0.05, gap_deadline=60
    )
    stats = ClientStats("solana", config.queue_size, [ConnectionStats(0)])
    delivery = Delivery(stats, config.queue_size, config.dedup_size)
    source = _BrokenHistory(refuse_after=6)
    subscriptions = [Subscription("trades")]
    recovery = GapRecovery(config, source, delivery, stats, lambda: subscriptions)  # type: ignore[arg-type]
    recovery.start()
    try:
        recovery.session_opened(0, resumed=False)  # the ``since`` gap: held until fetched
        assert recovery.hold.active
        recovery.channel_live(0, "trades")
        wait_until(lambda: recovery.gaps()[0].outcome != "pending", what="the first gap's outcome")
        (report,) = recovery.gaps()
        assert report.outcome == "lost" and report.attempts == 5 and "ZeroDivisionError" in report.reason
        assert not recovery.hold.active and stats.backfill_failures == 5 and source.fetches == 5
        # A second gap; this time the source breaks outside the fetch (when the retry is restricted).
        event = Event("trade", "solana", "M", "S", 10, None, 0, 0, False, {}, channel="trades")
        delivery.deliver(event)
        recovery.session_opened(0, resumed=True)
        recovery.channel_live(0, "trades")
        wait_until(lambda: len(recovery.gaps()) == 2 and recovery.gaps()[1].outcome != "pending", what="an outcome")
        assert recovery.gaps()[1].outcome == "lost" and "KeyError" in recovery.gaps()[1].reason
        assert recovery.source_stats()["recovery_errors"] == 1 and recovery.settled
        assert any(t.name == "pumpsync-backfill" and t.is_alive() for t in threading.enumerate())
    finally:
        recovery.stop()
        assert recovery.join(5)


class _OlderHistory:
    """A history with one event older than anything live (no network: the order is the point)."""

    stream_wide = True

    def __init__(self, event: Event) -> None:
        self.event = event

    def recoverable(self, channel: str) -> bool:
        return True

    def fetch(self, channels: Any, since: Any, stop: threading.Event) -> Any:
        yield [self.event]

    def close(self) -> None:
        pass


def test_a_gap_carried_to_the_next_session_keeps_the_live_events_behind_it() -> None:
    """A session ends before its gap started to fetch (a channel not live yet): the gap passes to
    the next session and the live events held meanwhile (newer than the gap) stay held until the
    gap is delivered; one hold, which the fetch ends."""
    from pumpsync._delivery import Delivery
    from pumpsync._recovery import GapRecovery
    from pumpsync._stats import ClientStats, ConnectionStats
    from pumpsync.config import make_config
    from pumpsync.providers.base import Subscription

    config = make_config(
        "solana", url="ws://127.0.0.1:9/", since=5, backoff_initial=0.01, backoff_max=0.05, gap_deadline=60
    )
    stats = ClientStats("solana", config.queue_size, [ConnectionStats(0)])
    delivery = Delivery(stats, config.queue_size, config.dedup_size)
    older = Event("trade", "solana", "M", "OLD", 7, None, 0, 0, True, {}, channel="trades")
    subscriptions = [Subscription("trades")]
    recovery = GapRecovery(config, _OlderHistory(older), delivery, stats, lambda: subscriptions)  # type: ignore[arg-type]
    recovery.start()
    try:
        recovery.session_opened(0, resumed=False)  # the ``since`` gap, waiting for "trades" to be live
        delivery.deliver(Event("trade", "solana", "M", "NEW", 9, None, 0, 0, False, {}, channel="trades"))
        recovery.session_ended(0)  # before "trades" was live: the gap is carried
        assert recovery.hold.active and delivery.queue.empty()
        recovery.session_opened(0, resumed=True)
        recovery.channel_live(0, "trades")
        wait_until(lambda: delivery.queue.qsize() == 2, what="the gap's event and the held one")
        assert [delivery.queue.get_nowait().signature for _ in range(2)] == ["OLD", "NEW"]
        wait_until(lambda: not recovery.hold.active, what="the one hold ended by the fetch")
    finally:
        recovery.stop()
        assert recovery.join(5)
