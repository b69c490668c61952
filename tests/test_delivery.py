"""Nothing lost, nothing twice: gap recovery, de-duplication, redundant connections, ordering."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pumpsync._delivery import Delivery, SeenSet
from pumpsync._hold import Hold
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync.config import make_config, rest_base
from pumpsync.events import Event
from pumpsync.providers.anaxer_history import AnaxerHistory
from pumpsync.providers.spec import Position
from tests.conftest import drain, wait_until

CHANNELS = {"creations": {}, "trades": {}, "graduations": {}}
TYPE_OF_KIND = {"new_token": "created", "trade": "swap", "graduation": "graduated"}


def key_of_record(record: dict[str, Any]) -> tuple[str, str, str | None]:
    return (record["type"], record["signature"], record.get("side"))


def key_of_event(event: Event) -> tuple[str, str, str | None]:
    return (TYPE_OF_KIND[event.kind], event.signature or "", event.side)


def anaxer_expected(sim) -> list[tuple[str, str, str | None]]:
    return [key_of_record(r) for r in sim.history("anaxer") if r["type"] in ("created", "swap", "graduated")]


# ---------------------------------------------------------------- pieces


def test_seen_set_remembers_at_least_the_last_size_identities_in_fixed_memory() -> None:
    seen = SeenSet(100)
    tables = (seen._current.buffer_info(), seen._previous.buffer_info())
    for i in range(10_000):
        assert seen.add(("k", i))
        assert not seen.add(("k", i))
    assert 100 <= len(seen) <= 200
    assert all(not seen.add(("k", i)) for i in range(9_900, 10_000))  # the last 100: remembered
    assert seen.add(("k", 0)) and seen.add(("k", 9_000))  # older ones: forgotten
    assert {seen._current.buffer_info(), seen._previous.buffer_info()} == set(tables)  # never reallocated


def test_seen_set_forget_keeps_the_other_identities_reachable() -> None:
    # Linear probing: a forgotten identity must not cut the probe chain of those after it.
    seen = SeenSet(1000)
    identities = [("k", i) for i in range(1000)]
    for identity in identities:
        assert seen.add(identity)
    for identity in identities[::2]:
        seen.forget(identity)
    assert all(not seen.add(identity) for identity in identities[1::2])  # still remembered
    assert all(seen.add(identity) for identity in identities[::2])  # forgotten: new again
    seen.forget(("never", "seen"))  # harmless


def test_seen_set_survives_colliding_home_slots() -> None:
    class Colliding(tuple):  # every identity hashes to the same home slot
        def __hash__(self) -> int:
            return (self[0] << 20) | 7

    seen = SeenSet(50)
    items = [Colliding((i,)) for i in range(1, 200)]
    for item in items:
        assert seen.add(item)
    assert all(not seen.add(item) for item in items[-50:])


def test_seen_set_rejects_a_zero_size() -> None:
    with pytest.raises(ValueError):
        SeenSet(0)


def ev(slot: int, sig: str, backfill: bool = False) -> Event:
    # Each launch its own mint: launches are told apart by mint (the identity across providers).
    return Event("new_token", "anaxer", f"M-{sig}", sig, slot, None, 0, 0, backfill, {}, "creations")


def _with_hold(stats: ClientStats, delivery: Delivery) -> Hold:
    """The hold a gap recovery attaches to its delivery, begun (a recovery has begun)."""
    hold = Hold(delivery.capacity, stats, delivery.merge.lock)
    delivery.attach_hold(hold)
    hold.begin()
    return hold


def _holding() -> tuple[ClientStats, Delivery]:
    """A Delivery of 100 events, holding live events (a recovery has begun)."""
    stats = ClientStats("anaxer", 100, [ConnectionStats(0)])
    delivery = Delivery(stats, 100, 1000)
    _with_hold(stats, delivery)
    return stats, delivery


def test_backfill_is_released_in_slot_order_before_held_live_events() -> None:
    stats, delivery = _holding()
    delivery.deliver(ev(10, "live-10"))
    delivery.deliver(ev(11, "live-11"))
    assert delivery.queue.qsize() == 0 and stats.held == 2
    new = delivery.release_backfill([ev(7, "old-7", True), ev(9, "old-9", True), ev(10, "live-10", True)])
    assert new == 2
    assert delivery.end_hold()
    order = [delivery.queue.get_nowait() for _ in range(4)]
    assert [(e.signature, e.backfill) for e in order] == [
        ("old-7", True),
        ("old-9", True),
        ("live-10", False),  # held live: that copy goes out in the history's place
        ("live-11", False),
    ]
    assert stats.duplicates == 1 and stats.held == 0 and delivery.queue.qsize() == 0


def test_held_copies_go_out_before_a_later_slot_the_live_stream_missed() -> None:
    """A second drop during a recovery: the history brings held events, then later slots that were
    never live. The held copies go out before those (slot order), each event once."""
    stats, delivery = _holding()
    delivery.deliver(ev(10, "live-10"))
    delivery.deliver(ev(20, "live-20"))
    new = delivery.release_backfill([ev(9, "old-9", True), ev(10, "live-10", True), ev(10, "old-10", True)])
    assert new == 2 and delivery.queue.qsize() == 2  # same slot: the held copy still follows
    new = delivery.release_backfill([ev(10, "live-10", True), ev(15, "missed-15", True), ev(20, "live-20", True)])
    assert new == 1
    assert delivery.end_hold()
    order = [delivery.queue.get_nowait() for _ in range(delivery.queue.qsize())]
    assert [(e.signature, e.backfill) for e in order] == [
        ("old-9", True),
        ("old-10", True),
        ("live-10", False),  # before slot 15, which only the history had
        ("missed-15", True),
        ("live-20", False),
    ]
    assert stats.duplicates == 3 and stats.held == 0


def test_held_events_past_the_bound_are_deferred_and_the_round_is_repeated() -> None:
    stats = ClientStats("anaxer", 3, [ConnectionStats(0)])
    delivery = Delivery(stats, 3, 100)
    hold = _with_hold(stats, delivery)
    mark = hold.deferrals
    for i in range(5):  # three held, then the bound: all let go, the rest deferred
        delivery.deliver(Event("new_token", "anaxer", "M", f"S{i}", i, None, 0, 0, False, {}, "creations"))
    assert stats.held == 0 and delivery.queue.qsize() == 0
    assert not delivery.end_hold(mark)  # fetch again: still holding
    delivery.deliver(Event("new_token", "anaxer", "M", "S5", 5, None, 0, 0, False, {}, "creations"))
    assert stats.held == 1
    assert delivery.end_hold(hold.deferrals)
    assert delivery.queue.get_nowait().signature == "S5"


def test_rest_base_follows_the_stream_url() -> None:
    assert rest_base(make_config("anaxer", api_key="k", url="ws://h:81/v1/stream")) == "http://h:81"
    assert (
        rest_base(make_config("anaxer", api_key="k", url="wss://api.anaxer.com/v1/stream")) == "https://api.anaxer.com"
    )
    assert rest_base(make_config("anaxer", api_key="k", rest_url="http://r:9/")) == "http://r:9"


def test_backfill_pages_by_path_and_reads_bare_lists(rest) -> None:
    record = {"type": "created", "mint": "M", "signature": "S", "slot": 5, "socials": {}}

    def pages(path: str, query: dict[str, list[str]]) -> Any:
        if path == "/v1/graduations":
            return [dict(record, type="graduated", signature="G1", slot=6)]
        if query.get("page") == ["2"]:
            return {"data": [dict(record, signature="S2", slot=7)], "next": None, "window": {"from": 0, "to": 9}}
        return {"data": [record], "next": "/v1/creations?page=2", "window": {"from": 0, "to": 9}}

    rest.pages = staticmethod(pages)
    history = AnaxerHistory(make_config("anaxer", api_key="rest-key", rest_url=rest.url))
    stop = threading.Event()

    def fetch(channel: str, filters: dict[str, Any], since: int) -> list[Any]:
        return [e for page in history.fetch({channel: filters}, Position(since), stop) for e in page]

    events = fetch("creations", {"exchange": "pumpfun", "mints": ["a", "b"]}, 5)
    assert [(e.signature, e.slot, e.backfill) for e in events] == [("S", 5, True), ("S2", 7, True)]
    assert rest.requests[0].startswith("/v1/creations?") and "since=5" in rest.requests[0]
    assert "mints=a%2Cb" in rest.requests[0] and "exchange=pumpfun" in rest.requests[0]
    assert [e.kind for e in fetch("graduations", {}, 0)] == ["graduation"]
    assert set(rest.authorizations) == {"Bearer rest-key"}
    history.close()


# ---------------------------------------------------------------- over the network


def _down_window(sim, client, emit: int) -> None:
    """Drop the client, keep it out for a moment, and publish `emit` events meanwhile."""
    sim.reject_next(3, provider="anaxer", status=503)
    before = client.stats()["connections"][0]["connects"]
    sim.drop(provider="anaxer")
    sim.emit(emit)
    wait_until(lambda: client.stats()["connections"][0]["connects"] > before and client.connected, what="reconnect")


def test_anaxer_gap_is_backfilled_exactly_once_in_order(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer"), channels=CHANNELS).start()
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    sim.emit(15)
    first = drain(client, len(anaxer_expected(sim)))
    _down_window(sim, client, emit=25)
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    sim.emit(10)
    expected = anaxer_expected(sim)
    rest = drain(client, len(expected) - len(first))
    got = [key_of_event(e) for e in first + rest]
    assert sorted(got) == sorted(expected) and len(set(got)) == len(got)
    backfilled = [e for e in rest if e.backfill]
    assert backfilled, "the gap came from REST"
    # the backfill reaches the consumer before the live events that follow the gap, in slot order
    first_live = next(i for i, e in enumerate(rest) if not e.backfill)
    assert all(e.backfill for e in rest[:first_live]) and not any(e.backfill for e in rest[first_live:])
    slots = [e.slot for e in rest[:first_live]]
    assert slots == sorted(slots)
    stats = client.stats()
    assert stats["backfill"]["requests"] >= 1 and stats["backfill"]["failures"] == 0


def test_since_starts_with_history(sim, make_client) -> None:
    sim.emit(20)
    history = anaxer_expected(sim)
    start_slot = min(r["slot"] for r in sim.history("anaxer"))
    client = make_client("anaxer", sim.url("anaxer"), channels=CHANNELS, since=start_slot).start()
    events = drain(client, len(history))
    assert all(e.backfill for e in events)
    assert sorted(key_of_event(e) for e in events) == sorted(history)


def test_rest_429_is_retried_honouring_retry_after(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer"), channels=CHANNELS).start()
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    sim.emit(5)
    drain(client, len(anaxer_expected(sim)))
    sim.rest_fail_next(2, status=429, retry_after=0.2)
    _down_window(sim, client, emit=10)
    expected = anaxer_expected(sim)
    wait_until(lambda: client.stats()["delivered"] == len(expected), what="gap filled after 429s")
    assert client.stats()["backfill"]["failures"] == 0


def test_failed_backfill_is_counted_and_never_kills_the_stream(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer"), channels={"creations": {}}, backoff_max=0.3).start()
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    sim.emit(3, kind="launch")
    drain(client, 3)
    sim.rest_fail_next(100, status=503)
    _down_window(sim, client, emit=0)
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    wait_until(lambda: client.stats()["backfill"]["failures"] >= 1, what="a counted backfill failure")
    sim.rest_fail_next(0)
    sim.emit(1, kind="launch")
    assert drain(client, 1)[0].kind == "new_token"  # live events flow
    assert client.error is None


def test_openpump_single_connection_loses_exactly_the_events_sent_while_down(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    sim.wait_for_connections("openpump", 1, timeout=10)
    sim.emit(1, kind="launch")
    sim.wait_for(lambda: len(sim.history("openpump")) == 2)  # new_token, then token_enriched
    sim.emit(5, kind="trade")
    before = len(sim.history("openpump"))
    drain(client, before)
    sim.reject_next(3, provider="openpump", status=503)
    sim.drop(provider="openpump")
    sim.emit(7, kind="trade")  # published while the only connection is down
    during = len(sim.history("openpump"))
    wait_until(lambda: client.connected and client.stats()["connections"][0]["connects"] == 2, what="reconnect")
    sim.wait_for_connections("openpump", 1, timeout=10)
    sim.emit(5, kind="trade")
    history = sim.history("openpump")
    after = drain(client, len(history) - during)
    assert [e.signature for e in after] == [h["signature"] for h in history[during:]]
    stats = client.stats()
    assert stats["delivered"] == len(history) - (during - before)  # exactly the 7 sent while down are missing
    assert stats["connections"][0]["disconnects"] == {"dropped": 1, "http_503": 3}  # and the outage is counted


@pytest.mark.parametrize("connections", [2])
def test_openpump_two_connections_survive_a_drop_of_either(sim, make_client, connections: int) -> None:
    client = make_client("openpump", sim.url("openpump"), connections=connections).start()
    sim.wait_for_connections("openpump", connections, timeout=10)
    for round_ in range(4):
        sim.emit(5, kind="trade")
        target = sim.connections("openpump")[round_ % 2].index
        sim.drop(provider="openpump", index=target)
        sim.emit(5, kind="trade")
        wait_until(lambda: sum(c["state"] == "open" for c in client.stats()["connections"]) == 2)
        sim.wait_for_connections("openpump", 2, timeout=10)
    sim.emit(5, kind="trade")
    history = sim.history("openpump")
    events = drain(client, len(history))
    assert sorted((e.kind, e.signature) for e in events) == sorted(
        ("trade" if h["type"] in ("buy", "sell") else h["type"], h["signature"]) for h in history
    )
    firsts = [c["first_deliveries"] for c in client.stats()["connections"]]
    assert sum(firsts) == len(history) and all(f > 0 for f in firsts)
