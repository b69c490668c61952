"""Issue 22.9 and 22.15: every position is owned. One state directory per daemon (locked, and
checked writable by ``--check`` and at start); positions keyed by source and sink target."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from daemonhelpers import clean_env, wait_until, worktree_env
from test_daemon import KEY_ENV, anaxer_args

from pumpsync.cli import cli
from pumpsync.daemon.state import PositionFile, StateDirError, StateLock, source_identity
from pumpsync.simulator import Simulator


def test_a_second_daemon_on_the_same_state_directory_fails_at_start_naming_it_and_the_holder(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    args = anaxer_args(sim, "--sink", f"jsonl:{tmp_path / 'a.jsonl'}", "--state-dir", str(state))
    first = start_daemon(args, env=worktree_env(**KEY_ENV)).wait_streaming(sim)
    for extra in (["--check"], []):  # --check and a real start refuse alike, in one line, exit 2
        second = start_daemon([*args, *extra], env=worktree_env(**KEY_ENV), name=f"second{len(extra)}")
        assert second.proc.wait(30) == 2, second.stderr
        errors = [line for line in second.stderr.splitlines() if line.strip()]
        assert "Traceback" not in second.stderr
        assert str(state) in errors[-1] and f"pid {first.proc.pid}" in errors[-1], errors
    assert first.running()
    assert first.stop() == 0
    # The lock is the holder's while it runs only: the next daemon starts.
    third = start_daemon(args, env=worktree_env(**KEY_ENV), name="third").wait_streaming(sim)
    assert third.stop() == 0


def test_the_lock_goes_with_its_holder_and_a_held_directory_is_refused(tmp_path: Path) -> None:
    lock = StateLock(tmp_path / "s")
    lock.acquire()
    assert (tmp_path / "s" / "pumpsync.lock").read_text().strip() == str(os.getpid())
    with pytest.raises(StateDirError) as info:  # flock is per open file: a second open in one process conflicts
        StateLock(tmp_path / "s").acquire()
    assert info.value.option == "state_dir" and "in use" in str(info.value) and str(os.getpid()) in str(info.value)
    lock.release()
    again = StateLock(tmp_path / "s")
    again.acquire()
    again.release()


def test_an_unwritable_state_directory_fails_check_and_start_in_one_line(tmp_path: Path) -> None:
    """The finding: it passed --check, then warned every second. (Under a plain file: unwritable even for root.)"""
    (tmp_path / "file").write_text("")
    state = tmp_path / "file" / "state"
    for extra in (["--check"], []):
        result = CliRunner().invoke(
            cli, ["daemon", "--provider", "anaxer", "--state-dir", str(state), *extra], env=clean_env(**KEY_ENV)
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "--state-dir" in result.output and str(state) in result.output
        assert "not writable" in result.output.strip().splitlines()[-1]


def test_positions_of_another_source_or_sink_target_are_never_resumed_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The finding: positions keyed by provider and sink name only, so a daemon resumed from
    another's. Now the file names its source and each sink's target."""
    here = source_identity("anaxer", ["wss://a.example/KEY/?api-key=SECRET"])
    assert "KEY" not in here and "SECRET" not in here
    positions = {"jsonl": {"trades": {"slot": 500, "ids": []}}, "sqlite": {"trades": {"slot": 400, "ids": []}}}
    writer = PositionFile(tmp_path, "anaxer", here)
    writer.save(positions, {"jsonl": "jsonl /a.jsonl", "sqlite": "sqlite /a.db"})
    assert json.loads((tmp_path / "positions.json").read_text())["source"] == here

    same = PositionFile(tmp_path, "anaxer", here).load({"jsonl": "jsonl /a.jsonl", "sqlite": "sqlite /b.db"})
    assert same == {"jsonl": positions["jsonl"]}  # the sqlite sink now writes elsewhere: not its positions

    caplog.set_level(logging.WARNING, "pumpsync.daemon")
    other = source_identity("anaxer", ["wss://b.example/"])
    assert PositionFile(tmp_path, "anaxer", other).load({"jsonl": "jsonl /a.jsonl"}) == {}
    assert PositionFile(tmp_path, "openpump", "openpump").load({}) == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("another source" in w for w in warnings) and any("another provider" in w for w in warnings)
    assert any("sink sqlite" in w for w in warnings)


def test_an_unwritable_state_file_warns_once_a_minute_not_every_second(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    """Positions that cannot be saved after start (the directory's file replaced by a directory):
    one warning, then quiet, not one a second."""
    state = tmp_path / "state"
    args = anaxer_args(sim, "--sink", f"jsonl:{tmp_path / 'a.jsonl'}", "--state-dir", str(state))
    daemon = start_daemon(args, env=worktree_env(**KEY_ENV)).wait_streaming(sim)
    (state / "positions.json.tmp").mkdir()  # open(...,"w") of the temporary file now fails
    sim.emit(5)
    wait_until(lambda: "cannot save the sinks' positions" in daemon.stderr, what="the warning")
    sim.emit(20)
    wait_until(lambda: len((tmp_path / "a.jsonl").read_text().splitlines()) >= 20, what="events in the file")
    time.sleep(2.5)  # the positions are saved every second: let a few saves fail
    assert daemon.stop() == 0
    assert daemon.stderr.count("cannot save the sinks' positions") == 1
