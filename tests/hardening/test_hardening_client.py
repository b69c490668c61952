"""The client's own lifecycle and bounds under hostile use (issue 18, items 10, 12, 13 and 14)."""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hardening_support import OP_TEXT, RawWs, RawWsServer

from pumpsync import Client, ClientClosed, Source, SubscriptionRejected, UsageError
from tests.conftest import FAST, drain, wait_until


def test_close_before_start_wakes_a_waiting_consumer_with_client_closed() -> None:
    """18.10: close() before start() queued nothing: a waiting consumer blocked until its timeout."""
    client = Client("openpump", api_key="k", url="ws://127.0.0.1:9/")
    outcome: list[BaseException] = []

    def consumer() -> None:
        # The queue itself: client.get() on a never-started client is a UsageError at once (issue 28),
        # but a consumer may wait on the queue before start() and must still be woken by close().
        try:
            outcome.append(client.queue.get(timeout=30))  # type: ignore[arg-type]
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=consumer, name="consumer")
    thread.start()
    wait_until(lambda: client.queue._sleepers == 1, what="the consumer waiting")
    client.close()
    thread.join(10)
    assert not thread.is_alive() and len(outcome) == 1 and isinstance(outcome[0], ClientClosed)
    with pytest.raises(ClientClosed):
        client.get(timeout=0)
    assert list(client) == []
    with pytest.raises(UsageError, match="closed"):
        client.start()


def _document_server(script_after_subscribe: Any) -> Any:
    """An Anaxer document-form server: greets, waits for both subscriptions, then runs the script."""

    def script(ws: RawWs) -> None:
        ws.send_text(json.dumps({"type": "connected"}))
        subscribed: set[str] = set()
        while len(subscribed) < 2:
            opcode, payload = ws.read_frame()
            if opcode == OP_TEXT:
                subscribed.add(json.loads(payload).get("subscribe"))
        for channel in sorted(subscribed):
            ws.send_text(json.dumps({"type": "subscribed", "channel": channel}))
        script_after_subscribe(ws)
        ws.hold()

    return script


def test_rejections_of_channels_never_subscribed_are_ignored_and_each_channel_is_rejected_once(
    servers, make_client
) -> None:
    """18.13: 5,000 rejections of made-up channels became 5,000 queue items past the queue's bound."""

    def hostile(ws: RawWs) -> None:
        for i in range(5000):
            ws.send_text(json.dumps({"type": "error", "code": "forbidden", "channel": f"made-up-{i}", "message": "x"}))
        for _ in range(3):
            ws.send_text(json.dumps({"type": "error", "code": "forbidden", "channel": "trades", "message": "no"}))
        record = {"type": "created", "mint": "M", "signature": "S", "slot": 5, "channel": "creations"}
        ws.send_text(json.dumps(record))

    server = servers(RawWsServer(_document_server(hostile)))
    client = make_client(
        "anaxer",
        server.url,
        channels={"creations": {}, "trades": {}},
        queue_size=100,
        ping_interval=30,
        pong_timeout=5,
        stale_timeout=30,
    ).start()
    with pytest.raises(SubscriptionRejected) as rejected:
        client.get(timeout=15)
    assert rejected.value.channel == "trades"
    (event,) = drain(client, 1)  # the creation, right after: nothing else was queued
    assert event.signature == "S" and client.queue.qsize() == 0
    assert client.stats()["rejected"] == {"trades": 1}
    assert [sub.channel for sub in client.subscriptions()] == ["creations"]


def test_notices_with_ever_new_codes_are_bounded_rate_limited_and_escaped(servers, make_client, caplog) -> None:
    """18.12: 300,000 error frames with new codes grew memory by 71 MB and wrote 300,000 log lines,
    terminal escapes included. Now: a bounded set of codes, one warning per code a minute, escaped text."""
    frames = 3000

    def hostile(ws: RawWs) -> None:
        for i in range(frames):
            message = "\x1b]0;pwned\x07 \u202eevil" if i % 2 else "slow down"
            ws.send_text(json.dumps({"type": "error", "code": f"made-up-{i % 1500}", "message": message}))
        record = {"type": "created", "mint": "M", "signature": "S", "slot": 5, "channel": "creations"}
        ws.send_text(json.dumps(record))

    caplog.set_level(logging.WARNING, logger="pumpsync")
    server = servers(RawWsServer(_document_server(hostile)))
    client = make_client(
        "anaxer",
        server.url,
        channels={"creations": {}, "trades": {}},
        ping_interval=30,
        pong_timeout=5,
        stale_timeout=30,
    ).start()
    (event,) = drain(client, 1)  # the record after every notice: all of them have been handled
    notices = client.raw_stats.notices
    assert event.signature == "S" and sum(notices.values()) == frames
    assert len(notices) <= 64 and notices["other"] > 0  # the codes past the first 63 share one label
    lines = [r.getMessage() for r in caplog.records if "reports" in r.getMessage()]
    assert 0 < len(lines) <= 64  # one per code (and one for "other"), not one per frame
    assert not any("\x1b" in line or "\u202e" in line or "\x07" in line for line in lines)
    assert any("\\u202eevil" in line for line in lines)  # shown escaped, not obeyed


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_closed_client_is_freed_at_once_with_its_sockets(sim, no_cyclic_gc) -> None:
    """18.14: a closed client waited for the cyclic garbage collector, with its sockets and tables."""
    for provider in ("openpump", "anaxer"):
        baseline = _open_fds()
        for _ in range(20):
            client = Client(provider, api_key="k", url=sim.url(provider), dedup_size=500_000).start()
            wait_until(lambda c=client: c.connected, what="connected")
            client.close()
            freed = weakref.ref(client)
            del client
            assert freed() is None, "the closed client is still referenced (a reference cycle)"
        wait_until(lambda b=baseline: _open_fds() <= b, what="descriptors back to where they were")


def test_a_closed_client_of_several_sources_is_freed_without_the_cyclic_collector(sim: Any, no_cyclic_gc: None) -> None:
    """Issue 24: one source or several, close() is one call and leaves no reference cycle."""
    sources = [Source(provider, api_key="k", url=sim.url(provider)) for provider in ("openpump", "anaxer")]
    client = Client(sources=sources, on_connect=lambda info: None, **FAST).start()
    wait_until(lambda c=client: all(m.connected for m in c.members.values()), what="both sources connected")
    engines = [weakref.ref(engine) for engine in client.members.values()]
    client.close()
    freed = weakref.ref(client)
    del client
    assert freed() is None, "the closed client is still referenced (a reference cycle)"
    assert all(engine() is None for engine in engines), "an engine outlived its client"
