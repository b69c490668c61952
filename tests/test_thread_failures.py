"""No thread dies unnoticed (issue #22): an unexpected end of each kind of thread a client starts is
caught, counted (``stats()["thread_failures"]``, ``pumpsync_thread_failures_total``), makes the client
not ready, and either restarts (a session) or fails the client loudly (``ThreadFailed``).

Each failure comes through a real path: a deliberately broken dialect, transport or history source
plugged into a provider's SPEC, against the simulator over real sockets; nothing is mocked.
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from pumpsync import Client, ThreadFailed
from pumpsync._transport import WebSocketTransport
from pumpsync.events import Event
from pumpsync.metrics import make_registry
from pumpsync.providers import PROVIDERS
from pumpsync.providers.spec import Position
from tests.conftest import FAST, wait_until


class _Bug(BaseException):
    """What a bug may raise: not even an ``Exception`` (nothing on the way catches it by accident)."""


def _patch(monkeypatch: pytest.MonkeyPatch, provider: str, **changes: Any) -> None:
    monkeypatch.setitem(PROVIDERS, provider, dataclasses.replace(PROVIDERS[provider], **changes))


def _fatal(client: Client, timeout: float = 15.0) -> ThreadFailed:
    """The ThreadFailed the consumer gets."""

    def got() -> ThreadFailed | None:
        try:
            client.get(timeout=0.05)
        except ThreadFailed as exc:
            return exc
        except queue.Empty:
            return None
        return None

    return wait_until(got, timeout=timeout, what="a ThreadFailed out of get()")  # type: ignore[no-any-return]


def _metric(client: Client, kind: str) -> float:
    value = make_registry(client).get_sample_value(
        "pumpsync_thread_failures_total", {"provider": client.raw_stats.provider, "thread": kind}
    )
    assert value is not None, "the metric is exported (at 0 before any failure)"
    return value


@pytest.fixture
def client_of(sim: Any) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(provider: str, **options: Any) -> Client:
        client = Client(provider, url=sim.url(provider), api_key="test-key", **{**FAST, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=5)


def test_the_metric_is_exported_at_zero(client_of: Callable[..., Client]) -> None:
    client = client_of("openpump")
    assert {kind: _metric(client, kind) for kind in ("connection", "supervisor", "backfill")} == dict.fromkeys(
        ("connection", "supervisor", "backfill"), 0.0
    )
    assert client.stats()["thread_failures"] == {"connection": 0, "supervisor": 0, "backfill": 0}


def test_a_session_killed_by_a_bug_is_counted_and_the_connection_reconnects(
    monkeypatch: pytest.MonkeyPatch, sim: Any, client_of: Callable[..., Client]
) -> None:
    base = PROVIDERS["openpump"].dialect

    # receive() is guarded (a frame that raises is one Malformed, never the session's end), so the
    # bug is in on_open(): the session's own code, once.
    raised: list[bool] = []

    class Broken(base):  # type: ignore[misc, valid-type]
        def on_open(self) -> list[str]:
            if not raised:
                raised.append(True)
                raise RuntimeError("a bug in the dialect")
            return super().on_open()  # type: ignore[no-any-return]

    _patch(monkeypatch, "openpump", dialect=Broken)
    client = client_of("openpump").start()
    wait_until(lambda: client.stats()["thread_failures"]["connection"] >= 1, what="the failure counted")
    wait_until(lambda: client.raw_stats.connections[0].connects >= 2, what="the connection to reconnect")
    assert _metric(client, "connection") >= 1
    assert client.error is None  # restarted, not fatal


async def _send_raw(sim: Any, text: str) -> None:
    for conn in sim._server("openpump").conns.values():
        conn.send(text)


def test_a_connection_thread_that_dies_fails_the_client_loudly(
    monkeypatch: pytest.MonkeyPatch, sim: Any, client_of: Callable[..., Client]
) -> None:
    class BrokenTransport(WebSocketTransport):
        def shutdown(self) -> None:  # runs outside the session's own guard
            super().shutdown()
            raise _Bug("a bug in the transport")

    _patch(monkeypatch, "openpump", transport=BrokenTransport)
    client = client_of("openpump").start()
    assert client.wait_connected(10)
    sim.drop("openpump")
    error = _fatal(client)
    assert error.thread == "connection" and error.fatal
    assert not client.ready
    assert client.stats()["thread_failures"]["connection"] == 1
    assert _metric(client, "connection") == 1


def test_a_supervisor_that_dies_fails_the_client_loudly(
    monkeypatch: pytest.MonkeyPatch, client_of: Callable[..., Client]
) -> None:
    base = PROVIDERS["openpump"].dialect

    class Broken(base):  # type: ignore[misc, valid-type]
        def ping(self) -> str | None:  # the supervisor asks for it
            raise _Bug("a bug in the heartbeat")

    _patch(monkeypatch, "openpump", dialect=Broken)
    client = client_of("openpump", ping_interval=0.2).start()
    error = _fatal(client)
    assert error.thread == "supervisor"
    assert not client.ready and not client.supervisor_alive
    assert _metric(client, "supervisor") == 1


# The recovery thread has no guard of its own: Python's threading hook prints the traceback, the
# supervisor's watch notices the end.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_backfill_thread_that_dies_fails_the_client_loudly(
    monkeypatch: pytest.MonkeyPatch, sim: Any, client_of: Callable[..., Client]
) -> None:
    real = PROVIDERS["anaxer"].history
    assert real is not None

    class BrokenHistory:
        def __init__(self, config: Any) -> None:
            self._real = real(config)
            self.stream_wide = self._real.stream_wide

        def recoverable(self, channel: str) -> bool:
            return bool(self._real.recoverable(channel))

        def fetch(self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: Any) -> Iterator[list[Event]]:
            raise _Bug("a bug in the history source")

        def close(self) -> None:
            self._real.close()

    _patch(monkeypatch, "anaxer", history=BrokenHistory)
    sim.emit(5)
    client = client_of("anaxer", rest_url=sim.rest_url("anaxer"), since=1).start()
    error = _fatal(client)
    assert error.thread == "backfill"
    assert not client.ready
    assert _metric(client, "backfill") == 1
