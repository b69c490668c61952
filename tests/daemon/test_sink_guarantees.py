"""Issue 18, the sinks in-process: strict JSON, torn JSONL tails, webhook identities and deadlines,
hostile callables. Real files, a real SQLite database, real local HTTP/TCP servers."""

from __future__ import annotations

import json
import math
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import serve_http, wait_until
from test_sinks import close, trade

from pumpsync.cli._render import terminal_safe, to_text
from pumpsync.daemon.sinks import CallableSink, FileSink, Sink, SqliteSink, WebhookSink, identity_key
from pumpsync.daemon.sinks.webhook import BATCH_HEADER
from pumpsync.events import Event


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def strict_loads(text: str | bytes) -> Any:
    """json.loads that refuses NaN/Infinity, as a strict receiver does."""
    return json.loads(text, parse_constant=_refuse_constant)


def deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


class Receiver(BaseHTTPRequestHandler):
    """A strict webhook receiver: 400 for anything that is not strict JSON; 503 while ``fail`` > 0."""

    requests: list[tuple[str | None, list[Any]]] = []
    fail = 0

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            body = strict_loads(raw)
        except ValueError:
            status = 400
        else:
            Receiver.requests.append((self.headers.get(BATCH_HEADER), body))
            status = 503 if Receiver.fail > 0 else 200
            Receiver.fail -= 1
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.requests, Receiver.fail = [], 0
    with serve_http(Receiver) as url:
        yield url + "/hook"


# ------------------------------------------------------------------ 4: strict JSON, one bad event costs only itself


def test_every_sink_writes_strict_json_and_a_bad_event_costs_only_itself(tmp_path: Path, receiver: str) -> None:
    good = [trade(i) for i in range(6)]
    nan = trade(10, sol_amount=math.nan, raw={"price": math.nan, "cap": [math.inf, -math.inf], "ok": 1})
    unserializable = trade(11, raw={"nested": deep(100_000)})  # json.dumps gives up (RecursionError)
    events = [good[0], nan, *good[1:3], unserializable, *good[3:]]
    jsonl, db = tmp_path / "out.jsonl", tmp_path / "events.sqlite3"
    sinks = [FileSink("jsonl", jsonl), SqliteSink("sqlite", db), WebhookSink("webhook", receiver, linger=0.0)]
    for sink in sinks:
        sink.start()
        for event in events:
            assert sink.offer(event)
        close(sink)
        # Everything but the unserializable event is written; that one is dropped and counted.
        assert (sink.written, sink.dropped) == (len(events) - 1, 1), sink.name
    expected = [e.signature for e in events if e is not unserializable]
    lines = [strict_loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["signature"] for line in lines] == expected
    assert lines[1]["raw"] == {"price": None, "cap": [None, None], "ok": 1} and lines[1]["sol_amount"] is None
    with sqlite3.connect(db) as conn:
        data = [strict_loads(row[0]) for row in conn.execute("SELECT data FROM events ORDER BY id")]
    assert [d["signature"] for d in data] == expected
    assert [item["signature"] for _, body in Receiver.requests for item in body] == expected


# ------------------------------------------------------------------ 3: a torn JSONL tail


def test_a_torn_jsonl_tail_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"earlier":1}\n{"earlier":2}\n{"torn":tr')  # a crash or a full disk mid-line
    sink = FileSink("jsonl", path)
    sink.start()
    for i in range(3):
        sink.offer(trade(i))
    close(sink)
    lines = [strict_loads(line) for line in path.read_text().splitlines()]
    assert lines[:2] == [{"earlier": 1}, {"earlier": 2}]
    assert [line["signature"] for line in lines[2:]] == ["Sig0", "Sig1", "Sig2"]
    path.write_bytes(b"no newline at all")
    sink = FileSink("jsonl", path)
    sink.start()
    sink.offer(trade(5))
    close(sink)
    assert [strict_loads(line)["signature"] for line in path.read_text().splitlines()] == ["Sig5"]


# ------------------------------------------------------------------ 6: webhook identities


def test_webhook_retries_carry_one_batch_key_and_event_ids(receiver: str) -> None:
    Receiver.fail = 2  # the receiver takes the batch but answers 503, twice: it is sent three times
    sink = WebhookSink("webhook", receiver, batch_size=10, linger=0.05, retry_initial=0.01, attempts=5)
    sink.start()
    events = [trade(i) for i in range(10)]
    for event in events:
        sink.offer(event)
    close(sink)
    assert (sink.written, sink.dropped, sink.failures) == (10, 0, 2)
    keys = [key for key, _ in Receiver.requests]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1  # the same key on every attempt
    for _, body in Receiver.requests:
        assert [item["id"] for item in body] == [identity_key(e) for e in events]
    other = WebhookSink("webhook", receiver, batch_size=10, linger=0.05)
    other.start()
    for event in [trade(i) for i in range(10, 20)]:
        other.offer(event)
    close(other)
    assert Receiver.requests[-1][0] not in (None, keys[0])  # another batch, another key


# ------------------------------------------------------------------ 9: a receiver that answers a byte at a time


@pytest.fixture
def trickler() -> Iterator[str]:
    """A TCP server that answers every request with one byte of a status line every 0.3 s, forever."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK" * 1000:
                if stop.wait(0.3):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()
    thread.join(5)


def test_a_webhook_that_trickles_its_answer_is_cut_off_by_the_timeout(trickler: str) -> None:
    # requests' timeout (1 s) is per read: a byte every 0.3 s never trips it. The whole request must.
    sink = WebhookSink("webhook", trickler, timeout=1.0, attempts=2, linger=0.0, retry_initial=0.01)
    sink.start()
    for i in range(3):
        sink.offer(trade(i))
    wait_until(lambda: sink.dropped == 3, timeout=30, what="the trickled batch to fail and be dropped")
    assert sink.failures == 2 and not sink.healthy and sink.written == 0
    close(sink)


def test_a_write_stuck_past_write_timeout_reports_unhealthy_and_is_accounted_at_shutdown() -> None:
    gate = threading.Event()

    class Stuck(Sink):
        kind = "stuck"

        def write(self, batch: list[Event]) -> None:
            gate.wait(60)

    sink = Stuck("stuck", write_timeout=0.2, batch_size=5)
    sink.start()
    for i in range(20):
        sink.offer(trade(i))
    wait_until(lambda: sink.stuck, what="the write to pass write_timeout")
    assert not sink.healthy
    sink.close(time.monotonic() + 0.1)
    assert not sink.join(0.5)  # still stuck
    assert sink.abandon() == 20  # the five in the write and the fifteen waiting
    gate.set()
    assert sink.join(10)
    assert (sink.written, sink.dropped) == (0, 20)  # the late write changed nothing


# ------------------------------------------------------------------ 5 and 7: hostile callables


HOSTILE = """
import sys

class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")

seen = []

def annotate(event):
    event.raw["annotated"] = True
    event.raw.pop("n", None)
    seen.append(event.signature)
    if event.slot % 3 == 1:
        raise Unprintable()
    if event.slot % 3 == 2:
        sys.exit(1)
"""


def test_a_callable_that_mutates_exits_or_raises_unprintably_harms_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "hostile_sink_mod.py").write_text(HOSTILE)
    sys.path.insert(0, str(tmp_path))
    jsonl = tmp_path / "out.jsonl"
    try:
        hostile, file = CallableSink("callable", "hostile_sink_mod:annotate"), FileSink("jsonl", jsonl, linger=0.05)
        events = [trade(i) for i in range(30)]
        for sink in (hostile, file):
            sink.start()
        for event in events:
            assert hostile.offer(event) and file.offer(event)
        for sink in (hostile, file):
            close(sink)
        import hostile_sink_mod  # type: ignore[import-not-found]

        assert len(hostile_sink_mod.seen) == 30
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hostile_sink_mod", None)
    assert (hostile.written, hostile.dropped, hostile.failures) == (10, 20, 20)
    assert "could not be shown" in caplog.text
    assert all(e.raw == {"type": "buy", "n": i} for i, e in enumerate(events))  # the originals are untouched
    assert [strict_loads(line)["raw"] for line in jsonl.read_text().splitlines()] == [e.raw for e in events]


# ------------------------------------------------------------------ 18: terminal output


def test_text_output_escapes_bidi_overrides_separators_and_zero_width_characters() -> None:
    hostile = "Safe\u202eTOKEN\u2066x\u2069\u2028y\u200bz\ufeff\x1b[31m"
    assert terminal_safe(hostile) == "Safe\\u202eTOKEN\\u2066x\\u2069\\u2028y\\u200bz\\ufeff?[31m"
    assert terminal_safe("plain ümlaut 🙂") == "plain ümlaut 🙂"
    line = to_text(trade(1, kind="new_token", name=hostile, symbol="\u202eSYM"))
    assert not any(ch in line for ch in "\u202e\u2066\u2069\u2028\u200b\ufeff\x1b")
    assert "\\u202e" in line
