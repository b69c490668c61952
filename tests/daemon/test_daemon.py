"""``pumpsync daemon`` as a real subprocess against the simulator: sinks, signals, keys."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import FAST_FLAGS, clean_env, http_get, wait_until, worktree_env

from pumpsync.simulator import Simulator

ANAXER_KINDS = {"created": "new_token", "swap": "trade", "graduated": "graduation"}


def anaxer_args(sim: Simulator, *extra: str) -> list[str]:
    return ["--provider", "anaxer", "--url", sim.url("anaxer"), "--rest-url", sim.rest_url("anaxer"),
            "--channel", "creations", "--channel", "trades", *FAST_FLAGS, *extra]  # fmt: skip


def expected_anaxer(sim: Simulator) -> Counter[tuple[str, str]]:
    """(kind, signature) of every creation and trade the simulator published."""
    records = sim.history("anaxer", "creations") + sim.history("anaxer", "trades")
    return Counter((ANAXER_KINDS[r["type"]], r["signature"]) for r in records)


def db_rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path, timeout=10) as db:
        return db.execute("SELECT kind, signature, identity FROM events").fetchall()


KEY_ENV = {"PUMPSYNC_API_KEY": "test-key"}


def test_sqlite_rows_match_the_simulator_and_a_restart_adds_no_duplicates(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    db = tmp_path / "state" / "events.sqlite3"
    db.parent.mkdir()  # the sink refuses a missing directory (a typo must not create one)
    daemon = start_daemon(anaxer_args(sim, "--sink", f"sqlite:{db}"), env=clean_env(**KEY_ENV))
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(40)
    expected = expected_anaxer(sim)
    wait_until(lambda: len(db_rows(db)) == sum(expected.values()), what="every event in SQLite")
    assert daemon.stop() == 0
    rows = db_rows(db)
    assert Counter((kind, sig) for kind, sig, _ in rows) == expected
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(events)")}
    assert {"events_mint", "events_slot"} <= indexes

    # Restart from the first slot: the backfill replays every event already stored.
    first_slot = min(r["slot"] for r in sim.history("anaxer", "trades"))
    again = start_daemon(anaxer_args(sim, "--sink", f"sqlite:{db}", "--since", str(first_slot)),
                         env=clean_env(**KEY_ENV))  # fmt: skip
    again.wait_ready()
    wait_until(lambda: (again.sample("pumpsync_backfill_requests_total") or 0) >= 2, what="both backfills")
    wait_until(lambda: (again.sample("pumpsync_backfill_events_total") or 0) >= len(rows), what="backfilled events")
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(10)
    expected = expected_anaxer(sim)
    wait_until(lambda: len(db_rows(db)) == sum(expected.values()), what="the new events in SQLite")
    assert again.stop() == 0
    rows = db_rows(db)
    assert len({identity for _, _, identity in rows}) == len(rows)
    assert Counter((kind, sig) for kind, sig, _ in rows) == expected


def test_jsonl_file_is_reopened_after_sighup(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    daemon = start_daemon(anaxer_args(sim, "--sink", f"jsonl:{path}"), env=clean_env(**KEY_ENV))
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(10)
    first = sum(expected_anaxer(sim).values())
    wait_until(lambda: path.exists() and len(path.read_text().splitlines()) == first, what="the first batch")

    rotated = path.with_name("events.jsonl.1")
    path.rename(rotated)
    daemon.signal(signal.SIGHUP)
    wait_until(path.exists, what="the file to be reopened at its path")
    sim.emit(10)
    total = sum(expected_anaxer(sim).values())
    wait_until(lambda: len(path.read_text().splitlines()) == total - first, what="the second batch in the new file")
    assert daemon.stop() == 0
    assert len(rotated.read_text().splitlines()) == first
    lines = [json.loads(line) for line in rotated.read_text().splitlines() + path.read_text().splitlines()]
    assert Counter((e["kind"], e["signature"]) for e in lines) == expected_anaxer(sim)
    assert "Traceback" not in daemon.stderr


SLOW_SINK = """
import os, time

def write(event):
    time.sleep(0.01)  # slow on purpose: the buffer is full of events when SIGTERM comes
    with open(os.environ["SLOW_SINK_OUT"], "a") as out:
        out.write(event.signature + "\\n")
"""


def test_sigterm_drains_the_queue_to_every_sink_and_exits_0(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    (tmp_path / "slowsink.py").write_text(SLOW_SINK)
    out = tmp_path / "slow.txt"
    jsonl = tmp_path / "events.jsonl"
    env = worktree_env(tmp_path, **KEY_ENV, SLOW_SINK_OUT=str(out))  # this checkout, not an installed copy
    daemon = start_daemon(
        anaxer_args(sim, "--sink", "callable:slowsink:write", "--sink", f"jsonl:{jsonl}", "--drain-timeout", "30"),
        env=env,
    )
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(60)
    expected = sum(expected_anaxer(sim).values())
    wait_until(lambda: daemon.sample("pumpsync_delivered_events_total") == expected, what="the daemon to receive all")
    backlog = daemon.sample("pumpsync_sink_buffer_depth", sink="callable")
    assert backlog is not None and backlog > 0, "the slow sink should still be behind when SIGTERM comes"
    assert daemon.stop() == 0
    assert len(out.read_text().splitlines()) == expected
    assert len(jsonl.read_text().splitlines()) == expected
    assert f"{expected} events dispatched" in daemon.stderr
    assert "Traceback" not in daemon.stderr


class _HangingHandler(BaseHTTPRequestHandler):
    started = threading.Event()
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).started.set()
        type(self).release.wait(60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hanging_webhook() -> Iterator[str]:
    _HangingHandler.started = threading.Event()
    _HangingHandler.release = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HangingHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    _HangingHandler.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_second_signal_exits_at_once(sim: Simulator, start_daemon: Any, tmp_path: Path, hanging_webhook: str) -> None:
    config = tmp_path / "pumpsync.toml"
    config.write_text(f'drain_timeout = 60\n[[sinks]]\ntype = "webhook"\nurl = "{hanging_webhook}"\ntimeout = 60\n')
    daemon = start_daemon(anaxer_args(sim, "--config", str(config)), env=clean_env(**KEY_ENV))
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(5)
    wait_until(_HangingHandler.started.is_set, what="the webhook sink to be stuck in a POST")
    daemon.signal(signal.SIGTERM)
    wait_until(lambda: "stopping (signal SIGTERM)" in daemon.stderr, what="the first signal to start the drain")
    started = time.monotonic()
    daemon.signal(signal.SIGINT)
    assert daemon.proc.wait(10) == 128 + signal.SIGINT
    assert time.monotonic() - started < 5
    assert "second signal" in daemon.stderr


def test_stdout_jsonl_is_the_default_sink(sim: Simulator, start_daemon: Any) -> None:
    daemon = start_daemon(["--provider", "openpump", "--url", sim.url("openpump"), *FAST_FLAGS],
                          env=clean_env(**KEY_ENV))  # fmt: skip
    daemon.wait_ready()
    sim.wait_for_connections("openpump", 1)
    sim.emit(5)
    wait_until(lambda: len(daemon.stdout.splitlines()) >= 5, what="events on stdout")
    assert daemon.stop() == 0
    events = [json.loads(line) for line in daemon.stdout.splitlines()]
    assert {e["provider"] for e in events} == {"openpump"}
    assert {"kind", "mint", "signature", "slot", "timestamp", "received_at", "raw"} <= set(events[0])
    assert "Traceback" not in daemon.stderr


SECRET = "sk-live-Secret-7f3a9c2b"


@pytest.mark.parametrize("provider", ["openpump", "anaxer"])
def test_the_key_never_appears_in_logs_metrics_or_files(provider: str, start_daemon: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "\n")
    jsonl, db = tmp_path / "events.jsonl", tmp_path / "events.sqlite3"
    with Simulator(providers=(provider,), rate=0, seed=3) as sim:
        args = ["--provider", provider, "--url", sim.url(provider), "--api-key-file", str(key_file), "-vv",
                "--sink", f"jsonl:{jsonl}", "--sink", f"sqlite:{db}", "--sink", "stdout", *FAST_FLAGS]  # fmt: skip
        if provider == "anaxer":
            args += ["--rest-url", sim.rest_url("anaxer"), "--since", "0"]  # REST with the key in a header
        else:
            args += ["--auth", "query"]  # the key in the stream URL
        daemon = start_daemon(args)
        daemon.wait_ready()
        sim.wait_for_connections(provider, 1, subscribed=provider == "anaxer")
        sim.emit(5)
        sim.drop(provider)  # reconnect: more log lines with URLs in them
        wait_until(lambda: (daemon.sample("pumpsync_connects_total", connection="0") or 0) >= 2, what="a reconnect")
        sim.emit(5)
        wait_until(lambda: jsonl.exists() and len(jsonl.read_text().splitlines()) >= 5, what="events in the file")
        scrape = daemon.metrics() + http_get(daemon.url + "/readyz")[1]
        assert daemon.stop() == 0
    assert "DEBUG" in daemon.stderr  # the most talkative level really ran
    for name, text in [("stderr", daemon.stderr), ("stdout", daemon.stdout), ("metrics", scrape)]:
        assert SECRET not in text, f"the key leaked into {name}"
    for path in tmp_path.iterdir():
        if path != key_file and path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path.name}"


def test_a_refused_key_exits_3_without_a_traceback(sim: Simulator, start_daemon: Any) -> None:
    daemon = start_daemon(["--provider", "openpump", "--url", sim.url("openpump"), *FAST_FLAGS],
                          env=clean_env(PUMPSYNC_API_KEY="sim-invalid"))  # fmt: skip
    assert daemon.proc.wait(20) == 3
    assert "Traceback" not in daemon.stderr
    assert "refused" in daemon.stderr or "1008" in daemon.stderr


def test_the_key_comes_from_the_systemd_credential(start_daemon: Any, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "api_key").write_text("credential-key-42\n")
    with Simulator(providers=("openpump",), rate=0, keys={"credential-key-42": "pro"}) as sim:
        daemon = start_daemon(["--provider", "openpump", "--url", sim.url("openpump"), *FAST_FLAGS],
                              env=clean_env(CREDENTIALS_DIRECTORY=str(credentials)))  # fmt: skip
        daemon.wait_ready()  # only that key is accepted by this simulator
        assert daemon.stop() == 0


def test_demo_mode_runs_against_the_built_in_simulator(start_daemon: Any) -> None:
    daemon = start_daemon(["--demo", "--provider", "anaxer"])
    daemon.wait_ready()
    wait_until(lambda: (daemon.sample("pumpsync_delivered_events_total") or 0) > 0, what="demo events")
    assert http_get(daemon.url + "/healthz")[0] == 200
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.stderr


def test_sighup_while_the_daemon_is_still_starting_does_not_kill_it(start_daemon, tmp_path: Path) -> None:
    """18.10: SIGHUP in the first moments after start killed the daemon. The config file is a FIFO,
    so the daemon is certainly still starting (reading it) when the signal comes."""
    import os

    fifo = tmp_path / "pumpsync.toml"
    os.mkfifo(fifo)
    daemon = start_daemon(["--demo", "--provider", "anaxer", "--config", str(fifo)])
    with open(fifo, "w", encoding="utf-8") as config:  # returns once the daemon has opened it for reading
        daemon.signal(signal.SIGHUP)
        config.write('log_level = "info"\n')
    daemon.wait_ready()
    assert daemon.stop() == 0
