"""A signal sent to ``pumpsync daemon`` while it starts: SIGTERM (or SIGINT) ends it cleanly with
status 0, whatever phase it lands in (the imports, the config read, the start of the sinks); a
SIGHUP before the sinks are open is a no-op that is logged (there is nothing to reopen yet).

The real console script, sent each signal the moment the kernel says the process handles it (its
first pumpsync import), or at a phase the test holds it in (a config file that is a FIFO). What is
left unguarded is the interpreter's own start, before any of pumpsync's code runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import REPO, free_port, wait_until, worktree_env
from test_daemon import KEY_ENV, anaxer_args

from pumpsync.simulator import Simulator

SCRIPT = Path(sys.executable).parent / "pumpsync"


def _handles(pid: int, signum: int) -> bool:
    """The kernel's word (``SigCgt``) that the process has a handler for ``signum``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signum - 1)))


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, run: int = 0, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        err = tmp_path / f"err{run}"
        with open(err, "wb") as out:
            proc = subprocess.Popen(
                [str(SCRIPT), "daemon", *args, "--metrics-addr", f"127.0.0.1:{free_port()}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=out, env=worktree_env(**KEY_ENV, **env),
                cwd=REPO, start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc, err

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _demo(tmp_path: Path, run: int) -> list[str]:
    return ["--demo", "--provider", "anaxer", "--sink", f"jsonl:{tmp_path / f'events{run}.jsonl'}"]


def _started(spawn: Any, tmp_path: Path, run: int) -> tuple[subprocess.Popen[bytes], Path]:
    """The daemon, once its first pumpsync module (``pumpsync._early``) has run: the moment its
    handlers are in place, long before its own (-X importtime prints each module as it is done)."""
    proc, err = spawn(*_demo(tmp_path, run), run=run, PYTHONPROFILEIMPORTTIME="1")
    wait_until(lambda: " pumpsync._early\n" in err.read_text(errors="replace") or proc.poll() is not None, 30,
               "pumpsync's first module")  # fmt: skip
    return proc, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_the_moment_it_is_handled_exits_0(spawn: Any, tmp_path: Path, signum: int) -> None:
    for run in range(4):
        proc, err = _started(spawn, tmp_path, run)
        assert _handles(proc.pid, signal.SIGTERM) and _handles(proc.pid, signal.SIGHUP)
        proc.send_signal(signum)
        assert proc.wait(30) == 0, err.read_text()[-3000:]
        text = err.read_text()
        assert "Traceback" not in text, text[-3000:]
        name = signal.Signals(signum).name
        assert f"{name} during start-up: exiting" in text or f"stopping (signal {name})" in text, text[-3000:]
        assert not (tmp_path / f"events{run}.jsonl").exists() or "stopped:" in text  # a sink opened is closed


def test_a_sighup_the_moment_it_is_handled_leaves_the_daemon_running(spawn: Any, tmp_path: Path) -> None:
    for run in range(3):
        proc, err = _started(spawn, tmp_path, run)
        proc.send_signal(signal.SIGHUP)
        _wait_ready(proc, err)
        assert proc.poll() is None, err.read_text()[-3000:]
        text = err.read_text()  # landed before the sinks opened (nearly always), or after: a reopen
        assert "before the sinks were open: nothing to reopen" in text or "SIGHUP: reopening" in text, text[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def _wait_ready(proc: subprocess.Popen[bytes], err: Path) -> None:
    wait_until(lambda: "ready: a connection is healthy" in err.read_text() or proc.poll() is not None, 30, "ready")


def _held_in_config_read(spawn: Any, sim: Simulator, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Any]:
    """The daemon blocked reading its config (a FIFO); the writer that lets it go on."""
    config = tmp_path / "pumpsync.toml"
    os.mkfifo(config)
    proc, err = spawn(*anaxer_args(sim, "--config", str(config)))
    opened = threading.Event()
    release = threading.Event()

    def write_config() -> None:
        with contextlib.suppress(BrokenPipeError), open(config, "w") as fifo:  # (a daemon that exited: no reader)
            opened.set()  # open() returned: the daemon has opened it for reading
            release.wait(30)
            fifo.write(f'[[sinks]]\ntype = "jsonl"\npath = "{tmp_path / "events.jsonl"}"\n')

    writer = threading.Thread(target=write_config, daemon=True)
    writer.start()
    wait_until(opened.is_set, what="the daemon to open its config")
    return proc, err, release


def test_a_sigterm_while_reading_the_config_exits_0_at_once(spawn: Any, sim: Simulator, tmp_path: Path) -> None:
    proc, err, release = _held_in_config_read(spawn, sim, tmp_path)
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(30) == 0  # without the rest of the config: nothing had started
    finally:
        release.set()
    assert err.read_text().strip() == "pumpsync: SIGTERM during start-up: exiting"
    assert not (tmp_path / "events.jsonl").exists()


def test_a_sighup_before_the_sinks_are_open_is_logged_and_reopens_nothing(
    spawn: Any, sim: Simulator, tmp_path: Path
) -> None:
    proc, err, release = _held_in_config_read(spawn, sim, tmp_path)
    proc.send_signal(signal.SIGHUP)
    release.set()
    _wait_ready(proc, err)
    text = err.read_text()
    assert proc.poll() is None, text[-3000:]
    assert text.count("SIGHUP during start-up, before the sinks were open: nothing to reopen") == 1
    assert "SIGHUP: reopening" not in text
    proc.send_signal(signal.SIGHUP)  # once running, it reopens
    wait_until(lambda: "SIGHUP: reopening" in err.read_text(), what="the reopen")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
