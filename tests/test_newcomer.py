"""What a newcomer trips over (issue 17, items 5, 6, 7, 10): each shown fixed against the simulator."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pumpsync
from pumpsync.errors import ConfigurationError, ConnectionLost, SubscriptionRejected
from pumpsync.events import Event
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.daemon.daemonhelpers import clean_env

FAST = {"backoff_initial": 0.05, "backoff_max": 0.2}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pumpsync", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(**(env or {})),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sim():
    with Simulator(providers=("openpump", "anaxer"), port=0, rate=80, seed=9) as simulator:
        yield simulator


# ---------------------------------------------------------------- item 5: one refused channel
def test_iteration_warns_about_a_refused_channel_and_goes_on(sim, caplog: pytest.LogCaptureFixture) -> None:
    channels = {"creations": {}, "trades": {}}  # the free plan refuses trades
    with (
        caplog.at_level(logging.WARNING, logger="pumpsync"),
        pumpsync.connect("anaxer", api_key="sim-free", url=sim.url("anaxer"), channels=channels) as stream,
    ):
        kinds = set()
        for event in stream:
            kinds.add(event.kind)
            if stream.stats()["rejected"] and len(kinds) >= 1 and stream.stats()["delivered"] >= 5:
                break
    assert kinds == {"new_token"}
    assert any("trades" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_iteration_raises_a_refused_channel_when_asked_to(sim) -> None:
    channels = {"creations": {}, "trades": {}}
    with (
        pumpsync.connect(
            "anaxer", api_key="sim-free", url=sim.url("anaxer"), channels=channels, raise_rejections=True
        ) as stream,
        pytest.raises(SubscriptionRejected) as info,
    ):
        for _ in stream:
            pass
    assert info.value.channel == "trades"


# ---------------------------------------------------------------- item 6: the first connection is bounded
def test_a_wrong_port_ends_with_one_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/stream"
    stream = pumpsync.connect("openpump", api_key="k", url=url, first_connect_timeout=1.0, **FAST)
    with stream, pytest.raises(ConnectionLost) as info:
        for _ in stream:
            pass
    message = str(info.value)
    assert "could not connect within 1 s" in message and "attempts" in message and "refused" in message


def test_retries_stay_unlimited_once_a_connection_has_opened() -> None:
    with Simulator(providers=("openpump",), port=0, rate=20, seed=1) as sim:
        client = pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"), first_connect_timeout=0.5, **FAST)
        try:
            assert client.wait_connected(timeout=10)
            sim.reject_next(1_000_000, provider="openpump", status=503)
            sim.drop("openpump")
            attempts = client.stats()["connections"][0]["attempts"]
            deadline = time.monotonic() + 1.5  # three first-connect timeouts
            wait_until(lambda: time.monotonic() > deadline, 5, "the first-connect timeout to pass, thrice")
            assert client.error is None and client.stats()["connections"][0]["attempts"] > attempts
        finally:
            client.close()


def test_wait_connected(sim) -> None:
    with pumpsync.Client("openpump", api_key="k", url=sim.url("openpump")) as client:
        assert client.wait_connected(timeout=10) and client.connected
    assert not client.wait_connected(timeout=0.1)  # closed: False at once, never a hang
    unreachable = pumpsync.Client("openpump", api_key="k", url=f"ws://127.0.0.1:{free_port()}/", **FAST)
    with unreachable:
        assert not unreachable.wait_connected(timeout=0.3)
    with pytest.raises(ConfigurationError):
        pumpsync.Client("openpump", api_key="k", first_connect_timeout=0)


# ---------------------------------------------------------------- item 7: the CLI
def test_a_fatal_cli_error_is_printed_once(sim) -> None:
    url = f"ws://127.0.0.1:{free_port()}/v1/stream"
    flags = ["--first-connect-timeout", "1", "--backoff-initial", "0.05", "--backoff-max", "0.2"]
    proc = cli("stream", "--url", url, *flags, env={"PUMPSYNC_API_KEY": "k"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert [line for line in err.splitlines() if "could not connect" in line] == [err.splitlines()[-1]]
    assert err.splitlines()[-1].startswith("pumpsync: could not connect within 1 s")
    refused = cli("stream", "--url", sim.url("openpump"), "--api-key", "sim-invalid")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 3 and sum("1008" in line for line in err.splitlines()) == 1, err


def test_stream_ends_cleanly_on_sigterm(sim) -> None:
    proc = cli("stream", "--url", sim.url("openpump"), "--format", "jsonl", env={"PUMPSYNC_API_KEY": "k"})
    assert proc.stdout is not None
    first = proc.stdout.readline()  # streaming: now stop it as systemd or docker would
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert Event.from_dict(json.loads(first)).provider == "openpump"
    assert "Traceback" not in err


def test_daemon_check_fails_without_a_key() -> None:
    proc = cli("daemon", "--check")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert '"api_key": "not found' in out and "no API key" in err


def test_a_sqlite_sink_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    typo = tmp_path / "no-such-dir" / "events.sqlite3"
    proc = cli("daemon", "--demo", "--metrics-addr", "off", "--sink", f"sqlite:{typo}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "does not exist" in err
    assert not typo.parent.exists()


# ---------------------------------------------------------------- item 10: events round-trip, channel included
def test_from_dict_gives_back_the_event(sim) -> None:
    with pumpsync.connect("anaxer", api_key="k", url=sim.url("anaxer")) as stream:
        events = [stream.get(timeout=10) for _ in range(20)]
    for event in events:
        assert event.channel in ("creations", "trades")
        assert Event.from_dict(event.to_dict()) == event
    with pytest.raises(ValueError, match="not an event"):
        Event.from_dict({"mint": "M"})
