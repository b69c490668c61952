"""Errors that say what to do (issue 28): each names the option, the value as given (keys
excepted) and the fix; a wrong endpoint or URL path is one fatal line, not a minute of retries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import pumpsync
from pumpsync import PlanError, ProviderRefused
from pumpsync.daemon.config import load_file
from pumpsync.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not (k.startswith("PUMPSYNC_") and "API_KEY" in k)}
    return subprocess.run(
        [sys.executable, "-m", "pumpsync", *args], capture_output=True, text=True, timeout=90,
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def both() -> Iterator[Simulator]:
    with Simulator(providers=("openpump", "anaxer"), port=0, rate=5, seed=2) as sim:
        yield sim


def test_an_anaxer_client_on_openpumps_port_says_so_and_stops(both: Simulator) -> None:
    client = pumpsync.Client("anaxer", api_key="k", url=both.url("openpump")).start()
    try:
        with pytest.raises(ProviderRefused, match="looks like the openpump endpoint") as caught:
            while True:
                assert client.get(timeout=30).kind != "unknown", "read another provider's frames as events"
        assert "--provider openpump" in str(caught.value) and caught.value.error_code == "wrong_endpoint"
    finally:
        client.close()
    done = _cli("stream", "--provider", "anaxer", "--url", both.url("openpump"), "--api-key", "k")
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "looks like the openpump endpoint" in done.stderr, done.stderr


def test_a_close_code_another_provider_reads_differently_says_so(both: Simulator) -> None:
    client = pumpsync.Client("openpump", api_key="k", url=both.url("anaxer")).start()
    try:
        with pytest.raises(PlanError) as caught:
            while True:
                client.get(timeout=30)
        assert "4001 is also anaxer's 'invalid or missing API key'" in str(caught.value)
    finally:
        client.close()


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_http_404_at_the_upgrade_is_fatal_at_once_naming_the_url() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, name="not-found")
    thread.start()
    try:
        url = f"ws://127.0.0.1:{server.server_port}/wrong/path"
        client = pumpsync.Client("openpump", api_key="k", url=url, first_connect_timeout=60, max_retries=None)
        client.start()
        try:
            with pytest.raises(ProviderRefused, match="HTTP 404: no stream at this URL's path"):
                client.get(timeout=30)  # formerly: retried for first_connect_timeout (60 s)
        finally:
            client.close()
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def test_the_missing_key_message_names_every_way_to_give_one() -> None:
    done = _cli("stream", "--provider", "openpump", "--duration", "1")
    assert done.returncode == 2
    assert "--api-key" in done.stderr and "api_key=" in done.stderr and "PUMPSYNC_API_KEY" in done.stderr


def test_a_url_typo_is_shown_as_typed_with_only_the_key_hidden() -> None:
    done = _cli("stream", "--provider", "openpump", "--api-key", "k", "--url", "127.0.0.1:8765")
    assert done.returncode == 2
    assert "'127.0.0.1:8765' is not a ws/wss URL (no scheme: did you mean ws://127.0.0.1:8765?)" in done.stderr
    secret = "127.0.0.1:8765/v1/stream?api_key=SECRET123"
    done = _cli("stream", "--provider", "openpump", "--api-key", "k", "--url", secret)
    assert done.returncode == 2 and "SECRET123" not in done.stderr and "127.0.0.1:8765/v1/stream" in done.stderr


def test_an_empty_key_file_is_blamed_on_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n")
    done = _cli("stream", "--provider", "openpump", "--api-key-file", str(empty))
    assert done.returncode == 2 and "'--api-key-file'" in done.stderr and "is empty" in done.stderr


def test_a_bad_channel_in_source_names_source_and_the_likely_channel() -> None:
    done = _cli("stream", "--source", "anaxer:trade", env={"PUMPSYNC_ANAXER_API_KEY": "k"})
    assert done.returncode == 2
    assert "'--source'" in done.stderr and "did you mean 'trades'?" in done.stderr


def test_config_file_typos_get_a_suggestion_and_key_files_are_read_beside_the_file(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("ping_intervall = 5\n")
    with pytest.raises(pumpsync.ConfigurationError, match="did you mean 'ping_interval'"):
        load_file(typo)
    conf = tmp_path / "etc" / "pumpsync.toml"
    conf.parent.mkdir()
    conf.write_text('api_key_file = "key"\n[[sources]]\nprovider = "anaxer"\napi_key_file = "anaxer.key"\n')
    data = load_file(conf)
    assert data["api_key_file"] == str(conf.parent / "key")
    assert data["sources"][0].options["api_key_file"] == str(conf.parent / "anaxer.key")


def test_a_replay_daemon_ends_cleanly_at_the_end_of_the_recording(tmp_path: Path) -> None:
    recording = tmp_path / "events.jsonl"
    event = pumpsync.Event("new_token", "openpump", "MINT", "sig", None, None, 1_700_000_000_000, 0, False, {})
    recording.write_text(json.dumps(event.to_dict()) + "\n")
    out = tmp_path / "out.jsonl"
    done = _cli("daemon", "--provider", "replay", "--url", f"file:{recording}", "--sink", f"jsonl:{out}",
                "--metrics-addr", "off", "-v")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fatal error" not in done.stderr and "the source has ended: the recording has ended" in done.stderr
