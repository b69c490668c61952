"""Shared fixtures: the simulator, clients that are always closed, and a thread-leak check."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pumpsync import Client


def _terminal_fd() -> int | None:
    try:
        return os.dup(sys.__stderr__.fileno()) if sys.__stderr__ is not None else None
    except (OSError, ValueError):
        return None


_TERMINAL_FD = _terminal_fd()

# Tests stop their subprocesses (a consumer, the CLI, a README example) with SIGINT, as Ctrl-C
# would. A test run started as a shell's background job inherits SIGINT ignored, and so would its
# subprocesses (Python keeps an inherited SIG_IGN): they would never stop. Their default, then.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Fast timings for tests; each test may override.
FAST = dict(
    ping_interval=1.0,
    pong_timeout=0.8,
    stale_timeout=2.0,
    backoff_initial=0.05,
    backoff_max=0.3,
    limited_backoff=0.5,
    healthy_after=0.5,
    hello_timeout=0.5,
)


def thread_dump() -> str:
    """Every thread's name and stack: a test that waited in vain shows who holds what (a future
    deadlock names itself). A test that hangs outright gets the same from pytest-timeout (``timeout``
    in pyproject.toml) and, as a backstop, from :func:`dump_stacks_if_hung`."""
    frames = sys._current_frames()
    parts = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident) if thread.ident is not None else None
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no frame)\n"
        parts.append(f"--- thread {thread.name} (daemon={thread.daemon})\n{stack}")
    return "\n".join(parts)


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "", interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline, with
    every thread's stack."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}\n{thread_dump()}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def dump_stacks_if_hung(request: pytest.FixtureRequest) -> Iterator[None]:
    """Backstop for a hang that no signal can interrupt: faulthandler writes every thread's stack to
    the terminal (fd 2 as pytest found it) shortly before pytest-timeout's deadline."""
    limit = float(request.config.getini("timeout") or 0)
    fd = _TERMINAL_FD
    if limit <= 0 or fd is None:
        yield
        return
    faulthandler.dump_traceback_later(max(1.0, limit - 5.0), exit=False, file=fd)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _pumpsync_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("pumpsync")}


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    before = _pumpsync_threads()
    yield
    wait_until(lambda: not (_pumpsync_threads() - before), timeout=10, what="pumpsync threads to end")


@pytest.fixture
def make_client() -> Iterator[Callable[..., Client]]:
    """Build clients with fast timings; every one is closed at the end of the test."""
    clients: list[Client] = []

    def make(provider: str, url: str, **options: Any) -> Client:
        options.setdefault("api_key", "test-key")
        client = Client(provider, url=url, **{**FAST, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        started = time.monotonic()
        client.close(timeout=5.0)
        assert time.monotonic() - started < 6.0, "close() took too long"


@pytest.fixture
def sim() -> Iterator[Any]:
    """A fresh simulator of both providers with no automatic events (tests call ``sim.emit``)."""
    from pumpsync.simulator import Simulator

    with Simulator(providers=("openpump", "anaxer"), port=0, rate=0, seed=7, enrich_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """A busy-loop process on the side (the machine is shared: one is enough to starve a thread)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait(10)


def drain(client: Client, n: int, timeout: float = 10.0) -> list[Any]:
    """The next ``n`` events from the client (errors raise)."""
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"got {len(out)} of {n} events within {timeout} s")
        try:
            out.append(client.get(timeout=remaining))
        except Exception as exc:
            import queue

            if isinstance(exc, queue.Empty):
                continue
            raise
    return out


class _Rest(BaseHTTPRequestHandler):
    """Anaxer-like REST lists."""

    pages: Callable[[str, dict[str, list[str]]], Any] = staticmethod(lambda path, query: [])
    requests: list[str] = []
    authorizations: list[str | None] = []
    url = ""

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        type(self).authorizations.append(self.headers["Authorization"])
        parts = urlsplit(self.path)
        data = json.dumps(type(self).pages(parts.path, parse_qs(parts.query))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def rest() -> Iterator[type[_Rest]]:
    """A REST server on 127.0.0.1 answering with ``rest.pages(path, query)`` (set it per test)."""
    handler = type("Rest", (_Rest,), {"requests": [], "authorizations": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="rest-server")
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield handler
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
