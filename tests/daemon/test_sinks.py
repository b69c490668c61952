"""Sinks in-process, against real files, a real SQLite database and a real local HTTP server."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import wait_until

from pumpsync._delivery import Item
from pumpsync.daemon.dispatch import Dispatcher
from pumpsync.daemon.sinks import (
    CallableSink,
    FileSink,
    Sink,
    SqliteSink,
    WebhookSink,
    build_sinks,
    identity_key,
    parse_sink,
)
from pumpsync.errors import ClientClosed, ConfigurationError
from pumpsync.events import Event


def trade(i: int, **changes: Any) -> Event:
    event = Event(
        kind="trade", provider="openpump", mint=f"Mint{i % 3}", signature=f"Sig{i}", slot=1000 + i,
        timestamp=1_700_000_000_000 + i, received_at=1_700_000_000_050 + i, connection=0, backfill=False,
        raw={"type": "buy", "n": i}, side="buy", sol_amount=0.5, trader=f"Trader{i}",
    )  # fmt: skip
    return event._replace(**changes)


def close(sink: Sink, timeout: float = 10.0) -> None:
    sink.close(time.monotonic() + timeout)
    assert sink.join(timeout + 2), f"sink {sink.name} did not finish"


# ------------------------------------------------------------------ SQLite


def test_sqlite_is_idempotent_on_the_event_identity(tmp_path: Path) -> None:
    path = tmp_path / "db" / "events.sqlite3"
    path.parent.mkdir()
    events = [trade(i) for i in range(50)]
    unknown = [
        trade(0, kind="unknown", signature=None, raw={"weird": 1}),
        trade(0, kind="unknown", signature=None, raw={"weird": 2}),
    ]
    for _ in range(2):  # the second run is a restart that sees the same events again
        sink = SqliteSink("sqlite", path)
        sink.start()
        for event in [*events, *unknown, *unknown]:
            assert sink.offer(event)
        close(sink)
        assert sink.written == 54 and sink.failures == 0 and sink.dropped == 0
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT identity, kind, signature, mint, slot, side, data FROM events ORDER BY id").fetchall()
    assert len(rows) == 52  # 50 trades and the 2 distinct unknown objects, each once
    assert [r[2] for r in rows[:50]] == [f"Sig{i}" for i in range(50)]
    assert json.loads(rows[0][6])["raw"] == {"type": "buy", "n": 0}
    assert rows[0][0] == identity_key(events[0])


def test_identity_keys_follow_event_identity() -> None:
    assert identity_key(trade(1)) == identity_key(trade(1, connection=1, backfill=True, received_at=5))
    assert identity_key(trade(1)) != identity_key(trade(1, side="sell"))
    assert identity_key(trade(1)) != identity_key(trade(1, provider="anaxer"))
    raw_only = trade(1, kind="unknown", signature=None)
    assert identity_key(raw_only) != identity_key(raw_only._replace(raw={"other": True}))


# ------------------------------------------------------------------ JSONL file


def test_file_sink_appends_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"earlier": true}\n')
    sink = FileSink("jsonl", path)
    sink.start()
    sink.offer(trade(1))
    wait_until(lambda: sink.written == 1, what="the first write")
    path.rename(tmp_path / "out.jsonl.1")
    sink.request_reopen()
    wait_until(path.exists, what="the reopened file")
    sink.offer(trade(2))
    close(sink)
    assert [json.loads(x)["signature"] for x in path.read_text().splitlines()] == ["Sig2"]
    assert len((tmp_path / "out.jsonl.1").read_text().splitlines()) == 2


# ------------------------------------------------------------------ webhook


class Hook(BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[Any] = []
    gate: threading.Event | None = None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Hook.gate is not None:
            Hook.gate.wait(30)
        status = Hook.statuses.pop(0) if Hook.statuses else 200
        if status == 200:
            Hook.bodies.append(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.statuses, Hook.bodies, Hook.gate = [], [], None
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/events?token=hook-secret"
    if Hook.gate is not None:
        Hook.gate.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_posts_batches_and_retries_with_backoff(hook: str) -> None:
    Hook.statuses = [503, 429]
    sink = WebhookSink("webhook", hook, batch_size=10, linger=0.05, retry_initial=0.05, attempts=5)
    sink.start()
    for i in range(25):
        sink.offer(trade(i))
    close(sink)
    delivered = [item["signature"] for body in Hook.bodies for item in body]
    assert delivered == [f"Sig{i}" for i in range(25)]
    assert all(len(body) <= 10 for body in Hook.bodies)
    assert (sink.written, sink.failures, sink.dropped, sink.healthy) == (25, 2, 0, True)
    assert "hook-secret" not in sink.describe()


def test_webhook_gives_up_at_once_on_a_client_error(hook: str) -> None:
    Hook.statuses = [400]
    sink = WebhookSink("webhook", hook, batch_size=5, linger=0.0, retry_initial=0.05)
    sink.start()
    for i in range(5):
        sink.offer(trade(i))
    wait_until(lambda: sink.dropped == 5, what="the refused batch to be dropped")
    assert sink.failures == 1 and not sink.healthy
    sink.offer(trade(9))
    close(sink)
    assert sink.healthy and sink.written == 1


def test_webhook_buffer_is_bounded_and_overflow_is_counted(hook: str) -> None:
    Hook.gate = threading.Event()  # the server holds every request until released
    sink = WebhookSink("webhook", hook, buffer=20, batch_size=5, linger=0.0, timeout=30)
    sink.start()
    sink.offer(trade(0))
    wait_until(lambda: sink.depth == 0, what="the first POST to be in flight")
    accepted = sum(sink.offer(trade(i)) for i in range(1, 101))
    assert accepted == 20 and sink.dropped == 80 and sink.depth == 20
    Hook.gate.set()
    close(sink)
    assert sink.written == 21 and sink.dropped == 80


# ------------------------------------------------------------------ isolation


def test_a_stuck_sink_stalls_neither_the_dispatcher_nor_the_other_sinks(tmp_path: Path) -> None:
    gate = threading.Event()
    seen: list[Event] = []

    class Stuck(Sink):
        kind = "stuck"

        def write(self, batch: list[Event]) -> None:
            gate.wait(30)

    class Memory(Sink):
        kind = "memory"

        def write(self, batch: list[Event]) -> None:
            seen.extend(batch)

    stuck, memory = Stuck("stuck", buffer=10, batch_size=1), Memory("memory")
    source: queue.SimpleQueue[Item] = queue.SimpleQueue()
    dispatcher = Dispatcher(source, [stuck, memory], on_fatal=lambda error: None)
    for sink in (stuck, memory):
        sink.start()
    dispatcher.start()
    for i in range(1000):
        source.put(trade(i))
    wait_until(lambda: len(seen) == 1000, what="the healthy sink to get every event")
    assert dispatcher.dispatched == 1000
    # One event is stuck in write(), ten wait in the buffer, the rest were refused and counted.
    wait_until(lambda: stuck.dropped + stuck.depth == 999, what="the stuck sink to hold one event in write()")
    assert stuck.depth in (9, 10)
    source.put(ClientClosed("done"))
    assert dispatcher.join(5)
    gate.set()
    for sink in (stuck, memory):
        close(sink)
    assert stuck.written + stuck.dropped == 1000


def test_a_failing_callable_is_counted_per_event(tmp_path: Path) -> None:
    module = tmp_path / "flaky_sink_mod.py"
    module.write_text("seen = []\ndef take(event):\n    if event.slot % 2:\n        raise ValueError('odd')\n"
                      "    seen.append(event.signature)\n")  # fmt: skip
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        sink = CallableSink("callable", "flaky_sink_mod:take")
        sink.start()
        for i in range(10):
            sink.offer(trade(i))
        close(sink)
        import flaky_sink_mod  # type: ignore[import-not-found]

        assert flaky_sink_mod.seen == [f"Sig{i}" for i in range(0, 10, 2)]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("flaky_sink_mod", None)
    assert (sink.written, sink.failures, sink.dropped) == (5, 5, 5)


# ------------------------------------------------------------------ specs


def test_sink_specs_parse_and_validate() -> None:
    assert parse_sink("stdout") == {"type": "stdout"}
    assert parse_sink("jsonl:/tmp/a b.jsonl") == {"type": "jsonl", "path": "/tmp/a b.jsonl"}
    assert parse_sink("file:x.jsonl") == {"type": "jsonl", "path": "x.jsonl"}
    assert parse_sink("callable:pkg.mod:func") == {"type": "callable", "target": "pkg.mod:func"}
    assert parse_sink("webhook:https://h/x?a=1") == {"type": "webhook", "url": "https://h/x?a=1"}
    for bad in ("kafka:x", "sqlite", "stdout:x"):
        with pytest.raises(ConfigurationError):
            parse_sink(bad)
    sinks = build_sinks([{"type": "sqlite", "path": "a"}, {"type": "sqlite", "path": "b"}, {"type": "stdout"}])
    assert [s.name for s in sinks] == ["sqlite", "sqlite-2", "stdout"]
    assert [s.name for s in build_sinks([])] == ["stdout"]
    for bad_spec in (
        {"type": "sqlite"},
        {"type": "sqlite", "path": "a", "colour": "red"},
        {"type": "webhook", "url": "ftp://x/"},
        {"type": "webhook", "url": "https://x/", "attempts": 0},
        {"type": "jsonl", "path": "a", "buffer": "big"},
    ):
        with pytest.raises(ConfigurationError):
            build_sinks([bad_spec])
