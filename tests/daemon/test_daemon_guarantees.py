"""Issue 18, the daemon as a real subprocess against the simulator: restarts resume, a full file
system, a stuck notify socket, stuck sinks at shutdown, SIGHUP while starting, bad config values."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from daemonhelpers import clean_env, wait_until, worktree_env
from test_daemon import KEY_ENV, anaxer_args, db_rows, expected_anaxer
from test_sinks import close, trade

from pumpsync._ranges import check_range
from pumpsync.cli import cli
from pumpsync.daemon.sinks import SqliteSink, identity_key
from pumpsync.errors import ConfigurationError
from pumpsync.simulator import Simulator


def jsonl_events(path: Path) -> Counter[tuple[str, str]]:
    return Counter((e["kind"], e["signature"]) for e in map(json.loads, path.read_text().splitlines()))


# ------------------------------------------------------------------ 2: a restart resumes where the sinks stopped


def test_a_killed_daemon_resumes_from_its_sqlite_rows(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    args = anaxer_args(sim, "--sink", f"sqlite:{db}")
    first = start_daemon(args, env=worktree_env(**KEY_ENV)).wait_streaming(sim)
    sim.emit(30)
    wait_until(lambda: len(db_rows(db)) == sum(expected_anaxer(sim).values()), what="the first events in SQLite")
    first.kill()  # kill -9: nothing saved on the way out
    sim.emit(30)  # while no daemon runs
    second = start_daemon(args, env=worktree_env(**KEY_ENV)).wait_streaming(sim)
    sim.emit(10)
    expected = expected_anaxer(sim)
    wait_until(lambda: len(db_rows(db)) == sum(expected.values()), what="the missed events in SQLite")
    assert second.stop() == 0
    assert Counter((kind, sig) for kind, sig, _ in db_rows(db)) == expected
    assert "resuming from slot" in second.stderr


def test_a_restarted_daemon_resumes_its_jsonl_file_from_the_state_directory(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    jsonl, state = tmp_path / "events.jsonl", tmp_path / "state"
    args = anaxer_args(sim, "--sink", f"jsonl:{jsonl}")
    env = worktree_env(**KEY_ENV, STATE_DIRECTORY=str(state))  # as systemd's StateDirectory= sets it
    first = start_daemon(args, env=env).wait_streaming(sim)
    sim.emit(30)
    wait_until(lambda: sum(jsonl_events(jsonl).values()) == sum(expected_anaxer(sim).values()), what="the events")
    assert first.stop() == 0
    assert (state / "positions.json").is_file()
    sim.emit(30)
    second = start_daemon(args, env=env).wait_streaming(sim)
    sim.emit(10)
    expected = expected_anaxer(sim)
    wait_until(lambda: set(jsonl_events(jsonl)) == set(expected), what="the missed events in the file")
    assert second.stop() == 0
    assert jsonl_events(jsonl) == expected  # each once: the events written before the restart were skipped
    # --fresh: from now on, the gap of a third restart stays a gap.
    sim.emit(10)
    third = start_daemon([*args, "--fresh"], env=env)
    third.wait_ready()
    assert third.stop() == 0
    assert "resuming" not in third.stderr


# ------------------------------------------------------------------ 3: JSONL on a full file system


def test_jsonl_on_a_full_file_system_stays_valid_and_matches_its_counters(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    jsonl = tmp_path / "events.jsonl"
    limit = 40_000  # RLIMIT_FSIZE: writes past it fail (EFBIG) like a full disk, a first one part-way

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    args = anaxer_args(sim, "--sink", f"jsonl:{jsonl}")
    daemon = start_daemon(args, env=worktree_env(**KEY_ENV), preexec=small_files).wait_streaming(sim)
    while not (daemon.sample("pumpsync_sink_events_dropped_total", sink="jsonl") or 0):
        sim.emit(20)
        wait_until(lambda: daemon.sample("pumpsync_sink_buffer_depth", sink="jsonl") == 0, what="the writes")
    assert daemon.stop() == 0
    written, dropped = daemon.final_counts()["jsonl"]
    assert dropped > 0
    lines = jsonl.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # every line whole
    assert len(lines) == written
    # Space again: the restart appends whole lines after the last whole one.
    again = start_daemon(
        anaxer_args(sim, "--sink", f"jsonl:{jsonl}", "--fresh"), env=worktree_env(**KEY_ENV)
    ).wait_streaming(sim)
    sim.emit(5)
    wait_until(lambda: len(jsonl.read_text().splitlines()) > written, what="new lines")
    assert again.stop() == 0
    assert all(json.loads(line) for line in jsonl.read_text().splitlines())


# ------------------------------------------------------------------ 8: a notify socket nobody reads


def test_a_notify_socket_nobody_reads_does_not_block_shutdown(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    address = str(tmp_path / "notify")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(address)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    try:
        while True:  # fill the manager's queue: a blocking sendto would now wait for good
            filler.sendto(b"STATUS=filler", address)
    except BlockingIOError:
        pass
    try:
        daemon = start_daemon(anaxer_args(sim), env=worktree_env(**KEY_ENV, NOTIFY_SOCKET=address))
        daemon.wait_ready()
        assert daemon.stop(timeout=30) == 0
    finally:
        filler.close()
        manager.close()


# ------------------------------------------------------------------ 9: stuck sinks at shutdown

STUCK_SINK = """
import threading

def hang(event):
    threading.Event().wait()  # a user's function that never returns
"""


def test_stuck_sinks_are_reported_unhealthy_and_every_event_is_accounted_at_shutdown(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    (tmp_path / "stucksink.py").write_text(STUCK_SINK)
    config = tmp_path / "pumpsync.toml"
    config.write_text(
        "drain_timeout = 2\n"
        '[[sinks]]\ntype = "callable"\ntarget = "stucksink:hang"\nwrite_timeout = 0.5\n'
        '[[sinks]]\ntype = "stdout"\nwrite_timeout = 0.5\n'  # a pipe nobody reads
        f'[[sinks]]\ntype = "jsonl"\npath = "{tmp_path / "events.jsonl"}"\n'
    )
    daemon = start_daemon(anaxer_args(sim, "--config", str(config)), env=worktree_env(tmp_path, **KEY_ENV),
                          stdout_pipe=True)  # fmt: skip
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    while daemon.sample("pumpsync_sink_healthy", sink="stdout") != 0:  # until the pipe (64 KiB) is full
        sim.emit(50)
        wait_until(lambda: daemon.sample("pumpsync_sink_buffer_depth", sink="jsonl") == 0, what="the writes")
    wait_until(lambda: daemon.sample("pumpsync_sink_healthy", sink="callable") == 0, what="the stuck callable")
    assert daemon.stop() == 0
    counts = daemon.final_counts()
    dispatched = counts.pop("dispatched")[0]
    assert set(counts) == {"callable", "stdout", "jsonl"}
    for name, (written, dropped) in counts.items():
        assert written + dropped == dispatched, (name, written, dropped, dispatched)
    assert counts["jsonl"] == (dispatched, 0)


# ------------------------------------------------------------------ 10: SIGHUP while the daemon starts


def test_a_sighup_while_the_daemon_starts_does_not_end_it(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    config = tmp_path / "pumpsync.toml"
    os.mkfifo(config)  # the daemon blocks reading it: a moment inside start-up that the test controls
    jsonl = tmp_path / "events.jsonl"
    daemon = start_daemon(anaxer_args(sim, "--config", str(config)), env=worktree_env(**KEY_ENV))
    opened = threading.Event()

    def write_config() -> None:
        with open(config, "w") as fifo:  # returns once the daemon has opened it for reading
            opened.set()
            fifo.write(f'[[sinks]]\ntype = "jsonl"\npath = "{jsonl}"\n')
            fifo.flush()
            wait_until(lambda: not daemon.running() or signalled.is_set(), what="the SIGHUP")

    signalled = threading.Event()
    writer = threading.Thread(target=write_config, daemon=True)
    writer.start()
    wait_until(opened.is_set, what="the daemon to open its config")
    daemon.signal(signal.SIGHUP)
    signalled.set()
    writer.join(10)
    daemon.wait_ready()
    # (before the sinks are open there is nothing to reopen: said, not acted on)
    wait_until(lambda: "before the sinks were open: nothing to reopen" in daemon.stderr, what="the early SIGHUP")
    assert daemon.stop() == 0


# ------------------------------------------------------------------ 16: config values of the wrong type or size


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("url = 5", "--url"),
        ('since = "5"', "--since"),
        ('max_retries = "3"', "--max-retries"),
        ("channels = [1, 2]", "--channel"),
        ("ca_bundle = 5", "--ca-bundle"),
        ("proxy = 5", "--proxy"),
        ("rest_url = 5", "--rest-url"),
        ('backfill = "no"', "--backfill"),
        ("queue_size = 1_000_000_000_000", "--queue-size"),
        ("dedup_size = 4e9", "--dedup-size"),
        ('metrics_addr = "127.0.0.1:99999"', "--metrics-addr"),
        ("resume = 1", "--resume"),
        ('[[sinks]]\ntype = "jsonl"\npath = "x"\nbuffer = 1_000_000_000_000', "sinks[0].buffer"),
    ],
)
def test_wrong_config_values_are_one_line_and_exit_2(tmp_path: Path, line: str, named: str) -> None:
    config = tmp_path / "pumpsync.toml"
    config.write_text(f'provider = "anaxer"\n{line}\n')
    for extra in (["--check"], []):  # --check and a real start refuse alike
        result = CliRunner().invoke(cli, ["daemon", "--config", str(config), *extra], env=clean_env(**KEY_ENV))
        assert result.exit_code == 2, (line, result.output, result.exception)
        assert "Traceback" not in result.output and named in result.output
        assert [x for x in result.output.splitlines() if x.startswith("Error")] == [
            result.output.strip().splitlines()[-1]
        ]


def test_ranges_are_one_table_for_api_cli_and_file() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_range("queue_size", 10**12)
    assert info.value.option == "queue_size"
    check_range("queue_size", 100_000)
    result = CliRunner().invoke(cli, ["daemon", "--provider", "anaxer", "--queue-size", str(10**12), "--check"],
                                env=clean_env(**KEY_ENV))  # fmt: skip
    assert result.exit_code == 2 and "queue-size" in result.output


def test_sqlite_positions_follow_the_rows(tmp_path: Path) -> None:
    sink = SqliteSink("sqlite", tmp_path / "db.sqlite3")
    sink.start()
    for i in range(5):
        sink.offer(trade(i, provider="anaxer", channel="trades"))
    close(sink)
    state = sink.positions.state()
    assert state == {"trades": {"slot": 1004, "ids": [identity_key(trade(4, provider="anaxer", channel="trades"))]}}
    reopened = SqliteSink("sqlite", tmp_path / "db.sqlite3")
    reopened.open()
    assert reopened.stored_positions("anaxer") == state and reopened.stored_positions("openpump") == {}
    reopened.close_resources()
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 5
