"""sd_notify against a real AF_UNIX datagram socket that the test binds (as systemd would)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import FAST_FLAGS, clean_env, free_port, wait_until

from pumpsync.daemon.sdnotify import Notifier
from pumpsync.simulator import Simulator


class Listener:
    """The service manager's end: collects every datagram."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def lines(self) -> list[str]:
        return [line for message in self.poll() for line in message.splitlines()]

    def count(self, line: str) -> int:
        return self.lines().count(line)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[Listener, str]]:
    path = str(tmp_path / "notify.sock")
    lis = Listener(path)
    yield lis, path
    lis.sock.close()


def test_notifier_speaks_to_a_path_socket(listener: tuple[Listener, str]) -> None:
    lis, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("1/1 connections healthy")
    assert notifier.status("line one\nline two")
    assert notifier.watchdog()
    assert notifier.stopping()
    notifier.close()
    wait_until(lambda: len(lis.poll()) == 4, what="four datagrams")
    assert lis.messages == ["READY=1\nSTATUS=1/1 connections healthy", "STATUS=line one line two", "WATCHDOG=1",
                            "STOPPING=1"]  # fmt: skip


def test_notifier_supports_the_abstract_namespace() -> None:
    name = f"pumpsync-test-{os.getpid()}-{time.monotonic_ns()}"
    lis = Listener(b"\0" + name.encode())
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        notifier.close()
        wait_until(lambda: lis.poll() == ["READY=1"], what="READY=1 on the abstract socket")
    finally:
        lis.sock.close()


def test_notifier_is_silent_without_systemd() -> None:
    assert not Notifier({}).ready()
    assert not Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled
    assert Notifier({}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "3000000"}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 1.5
    assert Notifier({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_the_daemon_notifies_ready_only_once_healthy(
    listener: tuple[Listener, str], start_daemon: Any, tmp_path: Path
) -> None:
    lis, path = listener
    port = free_port()  # nothing listens there yet: the daemon keeps reconnecting
    env = clean_env(NOTIFY_SOCKET=path, WATCHDOG_USEC="600000", PUMPSYNC_API_KEY="sd-notify-key-1")
    daemon = start_daemon(["--provider", "openpump", "--url", f"ws://127.0.0.1:{port}/v1/stream", *FAST_FLAGS], env=env)
    # The machinery is sound while the provider is away: the watchdog keeps being fed, READY waits.
    wait_until(lambda: lis.count("WATCHDOG=1") >= 3, what="watchdog pings while disconnected")
    assert "READY=1" not in lis.lines()
    with Simulator(providers=("openpump",), port=port, rate=5.0):
        wait_until(lambda: "READY=1" in lis.lines(), timeout=20, what="READY=1 once the simulator is up")
        wait_until(
            lambda: any(x.startswith("STATUS=openpump: 1/1 connections healthy") for x in lis.lines()),
            what="a healthy STATUS line",
        )
        pings = lis.count("WATCHDOG=1")
        wait_until(lambda: lis.count("WATCHDOG=1") >= pings + 2, what="more watchdog pings")
        assert daemon.stop() == 0
    lines = lis.lines()
    assert "STOPPING=1" in lines
    assert lines.index("STOPPING=1") > lines.index("READY=1")
    assert lines.count("READY=1") == 1
    assert all("sd-notify-key-1" not in line for line in lines)
    assert all("\n" not in line for line in lines if line.startswith("STATUS="))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the sink thread dies on purpose
def test_the_watchdog_is_withheld_when_a_part_of_the_machinery_dies(sim: Simulator) -> None:
    from pumpsync import Client
    from pumpsync.daemon.dispatch import Dispatcher
    from pumpsync.daemon.health import machinery_problem, summary
    from pumpsync.daemon.sinks import Sink
    from pumpsync.events import Event

    class Dies(Sink):
        kind = "dies"

        def write(self, batch: list[Event]) -> None:
            raise SystemExit  # not an Exception: the sink's thread ends, as a bug would end it

    client = Client(
        "openpump", api_key="k", url=sim.url("openpump"), ping_interval=0.5, pong_timeout=0.5, stale_timeout=2.0
    )
    sink = Dies("dies")
    dispatcher = Dispatcher(client.queue, [sink], on_fatal=lambda error: None)
    sink.start()
    dispatcher.start()
    client.start()
    try:
        wait_until(lambda: client.ready, what="a healthy connection")  # the verdict summary() reads
        assert machinery_problem(client, dispatcher, [sink], None) is None
        assert summary(client, [sink], dispatcher).startswith("openpump: 1/1 connections healthy; 0 events")
        sim.emit(1)
        wait_until(lambda: not sink.alive, what="the sink thread to die")
        assert machinery_problem(client, dispatcher, [sink], None) == "sink dies: its thread has ended"
    finally:
        client.close()
        assert dispatcher.join(5)
    assert machinery_problem(client, dispatcher, [], None) is not None  # closed: the supervisor has ended


def test_the_watchdog_judges_the_supervisor_on_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wall clock that steps (NTP, a resumed VM) must not withhold WATCHDOG=1; a supervisor that
    stops looking at its connections must."""
    from pumpsync import Client
    from pumpsync.daemon import health
    from pumpsync.daemon.dispatch import Dispatcher

    monkeypatch.setattr(health, "_GRACE", 0.5)  # the supervisor looks at every connection at least once a second
    client = Client("openpump", api_key="k", url=f"ws://127.0.0.1:{free_port()}/", backoff_initial=5, backoff_max=5)
    dispatcher = Dispatcher(client.queue, [], on_fatal=lambda error: None)
    dispatcher.start()
    client.start()
    try:
        conn = client.raw_stats.connections[0]
        wait_until(lambda: conn.state == "backoff" and conn.next_attempt_at, what="a scheduled retry")
        conn.next_attempt_at = conn.state_since = 0.0  # the wall-clock stamps now say "decades overdue"
        assert health.machinery_problem(client, dispatcher, [], None) is None
        with client.members["openpump"]._supervisor._cond:  # its loop cannot run while we hold its lock
            problem = wait_until(lambda: health.machinery_problem(client, dispatcher, [], None), what="stuck")
        assert problem.startswith("connection 0: the supervisor has not looked at it for")
        wait_until(lambda: health.machinery_problem(client, dispatcher, [], None) is None, what="sound again")
    finally:
        client.close()
        dispatcher.stop()
        assert dispatcher.join(5)
