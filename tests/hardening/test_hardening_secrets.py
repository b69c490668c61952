"""Secrets: the key lives in one redacting object, URLs and headers are scrubbed before any log
line or exception, and whole runs of the CLI and the daemon at debug level — connect, reconnects,
backfill, auth failure — leave no trace of a distinctive key in stdout, stderr, log files, the
SQLite file or a metrics scrape."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import pickle
import secrets
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hardening_support import HttpStatusServer, free_port
from hypothesis import given, settings
from hypothesis import strategies as st

import pumpsync
from pumpsync._secrets import ApiKey, RedactingFilter, redact
from pumpsync.providers.anaxer import Anaxer
from pumpsync.providers.openpump import OpenPump
from pumpsync.simulator import Simulator
from tests.conftest import drain, wait_until

# The core is what every spelling of the key contains (raw, percent-encoded, JSON-escaped):
# URL-safe characters are never escaped. The "+/=" tail makes the URL form differ from the raw one.
CORE = "pskLEAK" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
KEY = f"{CORE}+/="


def leaks(text: str | bytes) -> bool:
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return CORE.encode() in data


# ---------------------------------------------------------------- the key object and redaction


def test_api_key_never_shows_itself() -> None:
    key = ApiKey(KEY)
    for rendering in (
        repr(key),
        str(key),
        f"{key}",
        f"{key:>40}",
        "%s %r" % (key, key),  # noqa: UP031 - old-style formatting is what logging does
        json.dumps({"k": str(key)}),
    ):
        assert not leaks(rendering), rendering
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)
    assert key.reveal() == KEY and key == ApiKey(KEY) and not hasattr(key, "__dict__")


@pytest.mark.parametrize(
    "text",
    [
        f"ws://h/v1/stream?api_key={quote(KEY, safe='')}",
        f"ws://h/v1/stream?x=1&key={KEY}&y=2",
        f"GET /v1/stream?api_key={KEY} HTTP/1.1",
        f"Authorization: Bearer {KEY}",
        f"{{'Authorization': 'Bearer {KEY}'}}",
        f'{{"Authorization": "Bearer {KEY}"}}',
        f"Authorization: {KEY}",
        f"proxy http://user:{KEY}@proxy:3128 refused",
        f"plain mention of {KEY} in a message",
        f"percent-encoded {quote(KEY, safe='')} in a path",
    ],
)
def test_redact_scrubs_every_rendering(text: str) -> None:
    assert not leaks(redact(text, ApiKey(KEY)))


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FFF, exclude_characters="\x7f"), min_size=8, max_size=40
    )
)
def test_handshake_urls_and_headers_are_redacted_for_any_key(value: str) -> None:
    key = ApiKey(value)
    for dialect in (OpenPump(0, []), Anaxer(0, [])):
        for auth in ("query", "header"):
            handshake = dialect.handshake("wss://host/v1/stream?x=1", key, auth)
            for text in (handshake.url, repr(handshake), str(handshake.headers)):
                cleaned = redact(text, key)
                assert value not in cleaned and quote(value, safe="") not in cleaned


def test_logging_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(ApiKey(KEY)))
    logger = logging.getLogger("hardening.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting to %s", f"ws://h/?api_key={KEY}")
        logger.warning("header %r", {"Authorization": f"Bearer {KEY}"})
        try:
            raise ConnectionError(f"refused: ws://h/v1/stream?key={KEY}")
        except ConnectionError:
            logger.exception("a library blew up with the URL in its message")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "Traceback" in output and "ConnectionError" in output and not leaks(output), output


def test_reprs_stats_and_errors_of_a_client_hold_no_key(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), api_key=KEY, max_retries=1)
    for text in (repr(client), repr(client.config), str(client.config), json.dumps(client.stats())):
        assert not leaks(text)
    client.start()
    wait_until(lambda: client.connected)
    sim.close(1008, provider="openpump")  # the provider's "invalid key"
    with pytest.raises(pumpsync.AuthenticationError) as info:
        client.get(timeout=10)
    assert not leaks(repr(info.value)) and not leaks(str(info.value)) and not leaks(repr(info.value.__dict__))


# ---------------------------------------------------------------- whole runs


class Proc:
    """A child process whose stdout and stderr are collected as they come (so a test can wait on them)."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.out = bytearray()
        self.err = bytearray()
        self._readers = [
            threading.Thread(target=self._read, args=(s, b), name="hardening-proc-read", daemon=True)
            for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, sink: bytearray) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.extend(chunk)

    def lines(self) -> int:
        return bytes(self.out).count(b"\n")

    def stderr_has(self, text: str) -> int:
        return bytes(self.err).count(text.encode())

    def finish(self, timeout: float = 30) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail(f"still running after {timeout} s; stderr: {bytes(self.err)[-3000:].decode(errors='replace')}")
        for reader in self._readers:
            reader.join(5)
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def pumpsync_cli(*args: str, key_file: Path | None = None) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPSYNC_")}
    env["PYTHONUNBUFFERED"] = "1"
    if key_file is None:
        env["PUMPSYNC_API_KEY"] = KEY
    extra = ["--api-key-file", str(key_file)] if key_file is not None else []
    return Proc([sys.executable, "-m", "pumpsync", *args, *extra], env)


def new_session(sim: Simulator, provider: str, after: int, subscribed: bool = True) -> int:
    """Wait for a connection newer than index ``after``; return its index."""

    def found() -> list[int]:
        return [c.index for c in sim.connections(provider) if c.index > after and (c.subscribed or not subscribed)]

    indexes: list[int] = wait_until(found, timeout=20, what="a new session")
    return indexes[-1]


def through_reconnects_and_backfill(sim: Simulator, proc_alive: Callable[[], bool], provider: str = "anaxer") -> None:
    """Drive a running consumer: events, an abrupt drop (reconnect + backfill), REST 429s during the next
    backfill, two refused upgrades (503), then events again."""
    index = new_session(sim, provider, -1)
    sim.emit(2, kind="launch")
    sim.drop(provider=provider)
    sim.emit(2, kind="launch")  # while it is away: the backfill's business
    index = new_session(sim, provider, index)
    if provider == "anaxer":
        sim.rest_fail_next(2, status=429, retry_after=0.05)
    sim.reject_next(2, provider=provider, status=503)
    sim.drop(provider=provider)
    sim.emit(1, kind="launch")
    index = new_session(sim, provider, index)
    sim.emit(2, kind="trade")
    assert proc_alive()


def assert_clean(place: str, data: str | bytes) -> None:
    assert not leaks(data), f"the key leaked into {place}"


CLI_TIMING = ["--backoff-initial", "0.05", "--backoff-max", "0.3"]


def test_cli_stream_at_debug_level_never_prints_the_key(sim) -> None:
    # 1. Anaxer, key in the Authorization header: connect, reconnects, backfill (with REST 429s), 503s,
    #    then the key is refused (close 4001): exit 3.
    proc = pumpsync_cli(
        "stream",
        "--provider",
        "anaxer",
        "--url",
        sim.url("anaxer"),
        "--format",
        "jsonl",
        "-vv",
        "--channel",
        "creations",
        "--channel",
        "trades",
        *CLI_TIMING,
    )
    try:
        through_reconnects_and_backfill(sim, lambda: proc.proc.poll() is None)
        wait_until(lambda: proc.stderr_has("INFO pumpsync.backfill") >= 2, timeout=20, what="backfills")
        wait_until(lambda: proc.lines() >= 7, timeout=20, what="events on stdout")
        sim.close(4001, provider="anaxer")
        assert proc.finish() == 3
    finally:
        proc.kill()
    err = bytes(proc.err).decode(errors="replace")
    assert "http_503" in err and "4001" in err and "DEBUG" in err and "connection 0: open" in err
    assert "GET /v1/creations" in err  # urllib3's debug lines were there to be checked
    assert_clean("stdout", proc.out)
    assert_clean("stderr", proc.err)

    # 2. OpenPump, key in the URL's query: connect, reconnects, then refused at the upgrade (HTTP 401): exit 3.
    proc = pumpsync_cli(
        "stream",
        "--provider",
        "openpump",
        "--url",
        sim.url("openpump"),
        "--auth",
        "query",
        "--format",
        "text",
        "-vv",
        *CLI_TIMING,
    )
    try:
        through_reconnects_and_backfill(sim, lambda: proc.proc.poll() is None, provider="openpump")
        wait_until(lambda: proc.lines() >= 3, timeout=20, what="events on stdout")
        sim.reject_next(1, provider="openpump", status=401)
        sim.drop(provider="openpump")
        assert proc.finish() == 3
    finally:
        proc.kill()
    # The connect line shows scheme and host only (a key may sit in a URL's query or path).
    assert f"connecting to ws://127.0.0.1:{sim.port('openpump')}\n".encode() in proc.err
    assert_clean("stdout", proc.out)
    assert_clean("stderr", proc.err)


def test_cli_with_a_key_file_and_a_server_that_echoes_the_key(servers, tmp_path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    echo = servers(HttpStatusServer(401))  # answers 401 with the request line (key included) in body and header
    proc = pumpsync_cli(
        "stream", "--provider", "openpump", "--url", echo.url, "--auth", "query", "-vv", key_file=key_file
    )
    try:
        assert proc.finish() == 3
    finally:
        proc.kill()
    assert b"api_key=" in echo.requests[0]  # the server did get (and echo) the key
    assert_clean("stdout", proc.out)
    assert_clean("stderr", proc.err)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def test_library_logs_and_metrics_scrape_hold_no_key(caplog, make_client) -> None:
    from pumpsync.metrics import start_metrics_server

    caplog.set_level(logging.DEBUG)  # every logger: ours, websocket-client's, urllib3's
    # Explicitly too for urllib3: the daemon's log set-up (run in this process by other tests) raises its level.
    caplog.set_level(logging.DEBUG, logger="urllib3")
    scrapes: list[str] = []
    with Simulator(providers=("anaxer",), rate=0, seed=8) as sim:
        client = make_client("anaxer", sim.url("anaxer"), api_key=KEY, channels={"creations": {}, "trades": {}})
        metrics = start_metrics_server(client, "127.0.0.1:0")
        try:
            client.start()
            through_reconnects_and_backfill(sim, lambda: client.error is None)
            wait_until(lambda: client.stats()["backfill"]["requests"] >= 2, what="backfills")
            drain(client, 5)
            for path in ("/metrics", "/healthz", "/readyz"):
                try:
                    scrapes.append(scrape(metrics.url + path))
                except urllib.error.HTTPError as exc:  # /readyz may say 503: its body counts all the same
                    scrapes.append(exc.read().decode())
            sim.close(4001, provider="anaxer")
            with pytest.raises(pumpsync.AuthenticationError) as info:
                while True:
                    client.get(timeout=10)
            scrapes.append(scrape(metrics.url + "/metrics"))
        finally:
            metrics.close()
    assert "pumpsync_disconnects" in scrapes[0] and 'reason="http_503"' in scrapes[-1]
    assert_clean("the metrics scrape", "\n".join(scrapes))
    # The simulator runs in this process too; its server-side debug lines (request headers) are not the client's.
    client_records = [r for r in caplog.records if not r.name.startswith("pumpsync.simulator")]
    assert any(r.name == "websocket" or r.name.startswith("urllib3") for r in client_records)
    assert_clean("the log records", "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in client_records))
    assert_clean("the error", f"{info.value!r} {info.value}")
    assert_clean("stats", json.dumps(client.stats()))


@pytest.mark.skipif(importlib.util.find_spec("pumpsync.cli.daemon") is None, reason="pumpsync daemon not built yet")
def test_daemon_at_debug_level_leaves_no_key_in_logs_sqlite_jsonl_or_metrics(tmp_path) -> None:
    from pumpsync.cli.daemon import daemon

    options = {opt for param in daemon.params for opt in param.opts}
    needed = {"--sink", "--metrics-addr", "--log-level", "--url", "--provider"}
    if not needed <= options:
        pytest.skip(f"pumpsync daemon lacks {sorted(needed - options)}")
    db, jsonl = tmp_path / "events.sqlite3", tmp_path / "events.jsonl"
    addr = f"127.0.0.1:{free_port()}"
    scrapes: list[str] = []
    with Simulator(providers=("anaxer",), rate=0, seed=9) as sim:
        proc = pumpsync_cli(
            "daemon",
            "--provider",
            "anaxer",
            "--url",
            sim.url("anaxer"),
            "--sink",
            f"sqlite:{db}",
            "--sink",
            f"jsonl:{jsonl}",
            "--metrics-addr",
            addr,
            "--log-level",
            "debug",
            "--channel",
            "creations",
            "--channel",
            "trades",
            *CLI_TIMING,
        )
        try:
            through_reconnects_and_backfill(sim, lambda: proc.proc.poll() is None)
            wait_until(lambda: proc.stderr_has("INFO pumpsync.backfill") >= 2, timeout=20, what="backfills")
            wait_until(lambda: jsonl.exists() and jsonl.read_bytes().count(b"\n") >= 7, timeout=20, what="events")
            for path in ("/metrics", "/healthz", "/readyz"):
                try:
                    scrapes.append(scrape(f"http://{addr}{path}"))
                except urllib.error.HTTPError as exc:
                    scrapes.append(exc.read().decode())
            sim.close(4001, provider="anaxer")  # the key refused: the daemon stops with 3
            assert proc.finish() == 3
        finally:
            proc.kill()
    check = pumpsync_cli("daemon", "--provider", "anaxer", "--check", "--log-level", "debug")
    assert check.finish() == 0
    import sqlite3

    assert "pumpsync_events" in scrapes[0]
    err = bytes(proc.err).decode(errors="replace")
    assert "DEBUG" in err and "http_503" in err and "4001" in err  # it went through all of it
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from sqlite_master").fetchone()[0] > 0
    assert_clean("the daemon's stdout", proc.out)
    assert_clean("the daemon's stderr (its log)", proc.err)
    assert_clean("--check output", bytes(check.out) + bytes(check.err))
    assert_clean("the metrics scrape", "\n".join(scrapes))
    for path in tmp_path.iterdir():  # the database, its -wal/-shm files, the JSONL file
        assert_clean(path.name, path.read_bytes())
    assert db.exists() and jsonl.exists()
