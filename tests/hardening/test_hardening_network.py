"""Network faults, each against a real server on 127.0.0.1: the right behaviour (retry with
backoff, or a clear fatal error), one clear log line, no traceback, no busy loop."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hardening_support import (
    HttpStatusServer,
    RawWs,
    RawWsServer,
    SilentServer,
    TcpServer,
    assert_no_tracebacks,
    backlog_full_port,
    cpu_meter,
    frame,
    free_port,
    warnings_of,
)

import pumpsync
from pumpsync import AuthenticationError, PlanError
from tests.conftest import FAST, drain, wait_until

# CPU time / wall time of this process while the server is down: a busy retry loop would be ~1.0.
# The process also runs the fault server (TLS handshakes of its own), so under a loaded CI machine
# an honest backoff measured 0.21 once: the bound catches a spin, not a slow machine.
BUSY = 0.5
KEY = "hardening-Key+/=0123456789"  # distinctive, and changed by URL encoding


def conn_stats(client: pumpsync.Client) -> dict[str, Any]:
    stats: dict[str, Any] = client.stats()["connections"][0]
    return stats


def reconnect_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    pattern = re.compile(r"reconnecting in ([0-9.]+) s")
    return [float(m.group(1)) for r in caplog.records if (m := pattern.search(r.getMessage()))]


def watch_retries(client: pumpsync.Client, attempts: int = 6) -> float:
    """Wait for ``attempts`` more failed attempts; return the process's CPU share meanwhile."""
    start = conn_stats(client)["attempts"]
    with cpu_meter() as share:
        wait_until(lambda: conn_stats(client)["attempts"] >= start + attempts, timeout=20, what=f"{attempts} retries")
        return share()


# ---------------------------------------------------------------- the faults


@contextmanager
def refused() -> Iterator[str]:
    yield f"ws://127.0.0.1:{free_port()}/v1/stream"


@contextmanager
def dns_failure() -> Iterator[str]:
    yield "ws://pumpsync-hardening.invalid/v1/stream"  # .invalid never resolves (RFC 6761)


@contextmanager
def connect_timeout() -> Iterator[str]:
    listener, fillers = backlog_full_port()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/v1/stream"
    finally:
        for s in [*fillers, listener]:
            s.close()


@contextmanager
def silent_upgrade() -> Iterator[str]:
    with SilentServer() as server:
        yield server.url


@contextmanager
def closed_at_once() -> Iterator[str]:
    with TcpServer(lambda conn: conn.close(), name="closer") as server:  # a balancer with no backend
        yield server.url


@contextmanager
def tls_to_plain() -> Iterator[str]:
    def answer(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")  # a plain server, spoken TLS to

    with TcpServer(answer, name="plain") as server:
        yield f"wss://127.0.0.1:{server.port}/v1/stream"


FAULTS: dict[str, tuple[Callable[[], Any], str]] = {
    "connection refused": (refused, r"connection refused by 127\.0\.0\.1:\d+"),
    "DNS failure": (dns_failure, r"DNS lookup of 'pumpsync-hardening\.invalid' failed"),
    "connect timeout": (connect_timeout, r"connecting to 127\.0\.0\.1:\d+ timed out after 0\.5 s"),
    "TCP accepted, upgrade never answered": (silent_upgrade, r"did not answer the WebSocket upgrade within 0\.5 s"),
    "closed during the upgrade": (closed_at_once, r"closed the connection during the WebSocket upgrade|reset by"),
    "TLS handshake failure": (tls_to_plain, r"TLS handshake with 127\.0\.0\.1:\d+ failed"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_unreachable_server_retries_with_backoff_and_a_clear_line(
    fault: str, make_client, pumpsync_logs, capfd
) -> None:
    make_fault, line = FAULTS[fault]
    with make_fault() as url:
        client = make_client("openpump", url, api_key=KEY, connect_timeout=0.5).start()
        cpu = watch_retries(client)
        assert cpu < BUSY, f"{cpu:.0%} CPU while the server is unreachable"
        assert client.error is None and not client.connected
        assert set(conn_stats(client)["disconnects"]) == {"connect_failed"}
        lines = [w for w in warnings_of(pumpsync_logs) if "reconnecting in" in w]
        assert lines and all(re.search(line, w) for w in lines), lines[:3]
        assert all(0 <= d <= FAST["backoff_max"] + 0.005 for d in reconnect_delays(pumpsync_logs))
        client.close()
    text = assert_no_tracebacks(pumpsync_logs, capfd)
    assert KEY not in text and KEY not in pumpsync_logs.text


def test_tcp_reset_mid_frame_drops_the_half_frame_and_reconnects(servers, make_client, pumpsync_logs, capfd) -> None:
    def script(ws: RawWs) -> None:
        if len(ws.server.sessions) == 1:
            half = json.dumps({"type": "buy", "mint": "M", "signature": "half"}).encode()
            ws.send(frame(0x1, b"", length=1000) + half)  # a header promising 1000 bytes, then 40 of them
            ws.reset()  # RST (SO_LINGER 0), not FIN
            return
        ws.send_text(json.dumps({"type": "buy", "mint": "M", "signature": "whole"}))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, stale_timeout=30, pong_timeout=5, ping_interval=30).start()
    (event,) = drain(client, 1)
    assert event.signature == "whole"  # the half frame never surfaced
    stats = conn_stats(client)
    assert stats["disconnects"] == {"dropped": 1} and stats["malformed"] == {} and stats["connects"] == 2
    assert any("dropped (ConnectionResetError" in w for w in warnings_of(pumpsync_logs)), warnings_of(pumpsync_logs)
    assert_no_tracebacks(pumpsync_logs, capfd)


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (403, PlanError)])
def test_http_401_403_on_the_upgrade_are_fatal_at_once(
    servers, make_client, pumpsync_logs, capfd, status, error
) -> None:
    server = servers(HttpStatusServer(status))
    client = make_client("openpump", server.url, api_key=KEY).start()
    with pytest.raises(error) as info:
        client.get(timeout=10)
    assert f"HTTP {status}" in str(info.value)
    assert conn_stats(client)["attempts"] == 1 and server.accepted == 1  # no retry: it would not help
    assert any(f"HTTP {status}" in r.getMessage() for r in pumpsync_logs.records if r.levelname == "ERROR")
    assert b"api_key=" in server.requests[0].split(b"\r\n")[0]  # the key did go out (and came back echoed)
    text = assert_no_tracebacks(pumpsync_logs, capfd)
    for place in (text, pumpsync_logs.text, str(info.value), repr(info.value)):
        assert KEY not in place  # the server echoed the URL (key included) in its body and headers


@pytest.mark.parametrize("status", [429, 503])
def test_http_429_503_on_the_upgrade_retry_with_backoff(servers, make_client, pumpsync_logs, capfd, status) -> None:
    server = servers(HttpStatusServer(status, {"Retry-After": "1"}))
    floor = 0.4
    client = make_client("openpump", server.url, api_key=KEY, limited_backoff=floor).start()
    cpu = watch_retries(client, attempts=3)
    assert cpu < BUSY
    assert client.error is None and set(conn_stats(client)["disconnects"]) == {f"http_{status}"}
    delays = reconnect_delays(pumpsync_logs)
    # The server's Retry-After (1 s) beats both the rate-limit floor (429) and the short backoff.
    assert delays and all(1.0 - 0.005 <= d <= 1.0 + 0.005 for d in delays), delays
    phrase = {429: "Too Many Requests", 503: "Service Unavailable"}[status]
    assert any(
        f"http_{status} (the WebSocket upgrade was answered with HTTP {status} {phrase})" in w
        for w in warnings_of(pumpsync_logs)
    )
    text = assert_no_tracebacks(pumpsync_logs, capfd)
    assert KEY not in text and KEY not in pumpsync_logs.text


def test_recovers_once_the_server_comes_back(sim, make_client) -> None:
    """Refused while the simulator is down, streaming within backoff_max + 1 s of its return."""
    client = make_client("openpump", sim.url("openpump")).start()
    wait_until(lambda: client.connected, what="connected")
    port = sim.port("openpump")
    sim.restart(provider="openpump", downtime=1.5)  # returns once listening again
    wait_until(lambda: client.connected, timeout=FAST["backoff_max"] + 1, what="reconnect within backoff_max + 1 s")
    assert sim.port("openpump") == port and conn_stats(client)["connects"] >= 2


# ---------------------------------------------------------------- the CLI: exit status and stderr


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PUMPSYNC_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [
        ("refused", 1, r"gave up after 2 reconnection attempts \(last: connection refused by 127\.0\.0\.1:\d+\)"),
        ("dns", 1, r"DNS lookup of 'pumpsync-hardening\.invalid' failed"),
        ("401", 3, r"refused the WebSocket upgrade with HTTP 401"),
    ],
    ids=["refused", "dns", "401"],
)
def test_cli_fails_with_one_clear_line_and_no_traceback(servers, fault: str, status: int, message: str) -> None:
    url = {"refused": f"ws://127.0.0.1:{free_port()}/v1/stream", "dns": "ws://pumpsync-hardening.invalid/v1/stream"}
    if fault == "401":
        url["401"] = servers(HttpStatusServer(401)).url
    result = run_cli("--url", url[fault], "--max-retries", "2", "--backoff-initial", "0.05", "--backoff-max", "0.1")
    assert result.returncode == status, result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert KEY not in result.stderr
