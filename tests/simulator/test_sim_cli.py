"""``pumpsync simulate`` as a subprocess: prints its URLs, serves, stops cleanly."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from simhelpers import expect_close, recv_json, recv_until, ws_connect
from websockets.exceptions import InvalidStatus

import pumpsync.simulator

REPO = Path(pumpsync.simulator.__file__).resolve().parents[2]


class Cli:
    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from pumpsync.cli import main; main()", "simulate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def urls(self, count: int, timeout: float = 15.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        urls = {}
        while len(urls) < count:
            line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, f"exited early: {self.proc.stderr.read() if self.proc.stderr else ''}"
            name, url = line.split()
            urls[name] = url
        return urls

    def finish(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


@pytest.fixture
def cli() -> Iterator[list[Cli]]:
    started: list[Cli] = []
    yield started
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
        c.finish()


def test_serves_both_providers_and_stops_on_sigint(cli: list[Cli]) -> None:
    c = Cli("--provider", "both", "--rate", "30", "--seed", "3")
    cli.append(c)
    urls = c.urls(3)
    assert set(urls) == {"openpump", "anaxer", "anaxer-rest"}
    assert urls["openpump"].startswith("ws://127.0.0.1:") and urls["openpump"].endswith("/v1/stream")
    with ws_connect(urls["openpump"], param="api_key") as ws:
        assert recv_json(ws)["type"] == "connected"
        assert recv_until(ws, lambda m: m["type"] in ("new_token", "buy", "sell"))["mint"].endswith("pump")
    with ws_connect(urls["anaxer"], param="key") as ws:
        assert recv_json(ws)["type"] == "connected"
    response = requests.get(urls["anaxer-rest"] + "/v1/trades", headers={"Authorization": "Bearer k"}, timeout=5)
    assert response.status_code == 200
    c.proc.send_signal(signal.SIGINT)
    assert c.finish() == 0


def test_duration_and_fault_flags(cli: list[Cli]) -> None:
    c = Cli(
        "--provider", "openpump", "--rate", "0", "--reject-first", "1", "--close-every", "0.4:1011", "--duration", "2"
    )
    cli.append(c)
    url = c.urls(1)["openpump"]
    with pytest.raises(InvalidStatus):
        ws_connect(url, param="api_key")
    with ws_connect(url, param="api_key") as ws:
        recv_json(ws)
        assert expect_close(ws)[0] == 1011
    assert c.finish() == 0  # --duration ends it by itself


def test_drop_every(cli: list[Cli]) -> None:
    c = Cli(
        "--provider", "anaxer", "--rate", "0", "--drop-every", "0.3", "--anaxer-form", "document", "--duration", "5"
    )
    cli.append(c)
    urls = c.urls(2)
    with ws_connect(urls["anaxer"], param="key") as ws:
        assert expect_close(ws) == (None, "")
    c.proc.send_signal(signal.SIGTERM)
    assert c.finish() == 0


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rate", "-1"], "--rate"),
        (["--provider", "nonesuch"], "--provider"),
        (["--close-every", "5"], "--close-every"),
        (["--anaxer-form", "v2"], "--anaxer-form"),
        (["--key", "k=gold"], "--key"),
    ],
)
def test_bad_flags_give_a_click_error(args: list[str], option: str) -> None:
    from pumpsync.cli.simulate import simulate

    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and option in errors[0]


def test_malformed_stall_and_key_flags(cli: list[Cli]) -> None:
    c = Cli(
        "--provider",
        "openpump",
        "--rate",
        "0",
        "--malformed-every",
        "0.2",
        "--stall-every",
        "0.7",
        "--key",
        "good=pro",
        "--duration",
        "4",
    )
    cli.append(c)
    url = c.urls(1)["openpump"]
    with ws_connect(url, "other", param="api_key") as ws:
        assert expect_close(ws)[0] == 1008
    with ws_connect(url, "good", param="api_key", max_size=None) as ws:
        assert recv_json(ws)["type"] == "connected"
        raw = ws.recv(timeout=5)  # at rate 0 the only data frames are the injected ones
        assert _is_malformed(raw)
    c.proc.send_signal(signal.SIGINT)
    assert c.finish() == 0


def _is_malformed(raw: str | bytes) -> bool:
    if isinstance(raw, bytes):
        return True
    try:
        frame = json.loads(raw)
    except ValueError:
        return True
    if not isinstance(frame, dict):
        return True
    return frame.get("type") == "sim_unknown_event" or "mint" not in frame or len(raw) >= 2**20
