"""Gap recovery against a hostile Anaxer REST history (issue 22, items 3 and 12): a 503 whose
``Retry-After`` is 11 days, and a page far larger than any honest one. The live stream is the
simulator's; the history is a small HTTP server on 127.0.0.1 written for these tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pumpsync import Client, Event
from pumpsync.providers._history_http import MAX_ANSWER_BYTES
from tests.conftest import drain, wait_until

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class History:
    answer: Callable[[str], Answer]
    url: str = ""
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def history() -> Iterator[History]:
    state = History(answer=lambda path: (200, {}, b"[]"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            status, headers, body = state.answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:  # the client refused the rest of it
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="hostile-rest", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def creations(sim: Any) -> list[str]:
    return [r["signature"] for r in sim.history("anaxer") if r["type"] == "created"]


def test_a_retry_after_of_eleven_days_holds_the_live_stream_only_until_the_deadline(
    sim: Any, make_client: Callable[..., Client], history: History
) -> None:
    """22.3: Anaxer REST answering ``503 Retry-After: 999999`` held the live stream for the whole test."""
    history.answer = lambda path: (503, {"Retry-After": "999999"}, b"{}")
    client = make_client(
        "anaxer", sim.url("anaxer"), channels={"creations": {}}, since=1, rest_url=history.url, gap_deadline=1.0
    ).start()
    sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
    wait_until(lambda: history.requests, what="the recovery's first request")
    sim.emit(8, kind="launch")
    live = drain(client, len(creations(sim)))
    assert [e.signature for e in live if isinstance(e, Event)] == creations(sim)
    (report,) = client.gaps()
    assert report.outcome == "pending" and report.released and report.since_slot == 1
    assert not client.ready and client.stats()["gaps"]["released"] == 1
    assert len(history.requests) == 1  # waiting out its Retry-After (capped), not hammering


def test_a_page_larger_than_any_honest_one_is_refused_unparsed_and_reported(
    sim: Any, make_client: Callable[..., Client], history: History
) -> None:
    """22.12: one page of 1,000,000 items took 945 MB. The answer is now read at most
    ``MAX_ANSWER_BYTES`` and refused past that, before it is parsed: counted, and the gap reported."""
    item = {"type": "created", "mint": "M", "signature": "S", "slot": 5, "name": "x"}
    one = json.dumps(item).encode()
    body = b"[" + b",".join([one] * (MAX_ANSWER_BYTES // len(one) + 10)) + b"]"
    history.answer = lambda path: (200, {}, body)
    client = make_client("anaxer", sim.url("anaxer"), channels={"creations": {}}, since=1, rest_url=history.url)
    client.start()
    report = wait_until(lambda: [g for g in client.gaps() if g.outcome != "pending"], timeout=30, what="an outcome")[0]
    assert report.outcome == "lost" and report.recovered == 0 and "bound" in report.reason
    stats = client.stats()
    assert stats["backfill"]["failures"] == 5 and stats["backfill"]["events"] == 0
    assert client.queue.qsize() == 0  # nothing of it delivered
    sim.emit(3, kind="launch")  # and the live stream goes on
    assert [e.signature for e in drain(client, len(creations(sim))) if isinstance(e, Event)] == creations(sim)
