"""Issue 22.5: a stdout pipe nobody reads is reported (the sink gauge, ``/readyz``, the sd_notify
STATUS line) within its write deadline; a SIGHUP during the daemon's imports does not end it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from daemonhelpers import REPO, free_port, http_get, wait_until, worktree_env
from test_daemon import KEY_ENV, anaxer_args

from pumpsync.simulator import Simulator


def test_a_stdout_pipe_nobody_reads_makes_the_daemon_not_ready_and_says_so(
    sim: Simulator, start_daemon: Any, tmp_path: Path
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0.2)
    config = tmp_path / "pumpsync.toml"
    config.write_text('drain_timeout = 2\n[[sinks]]\ntype = "stdout"\nwrite_timeout = 1\n')
    env = worktree_env(**KEY_ENV, NOTIFY_SOCKET=str(tmp_path / "notify"))
    daemon = start_daemon(anaxer_args(sim, "--config", str(config)), env=env, stdout_pipe=True)  # never read
    daemon.wait_streaming(sim)
    statuses: list[str] = []

    def status_says_failing() -> bool:
        try:
            statuses.append(notify.recv(4096).decode())
        except TimeoutError:
            pass
        return any("sinks failing: stdout" in s for s in statuses)

    while daemon.sample("pumpsync_sink_healthy", sink="stdout") != 0:  # until the pipe (64 KiB) is full
        sim.emit(100)
        wait_until(lambda: (daemon.sample("pumpsync_sink_buffer_depth", sink="stdout") or 0) < 50, what="writes")
    status, body = http_get(daemon.url + "/readyz")
    assert (status, body) == (503, "sinks failing: stdout\n")  # before: 200 "ready" with the sink stuck
    wait_until(status_says_failing, 20, "STATUS=... sinks failing: stdout")
    notify.close()
    assert daemon.stop() == 0
    counts = daemon.final_counts()
    written, dropped = counts["stdout"]
    assert dropped > 0 and written + dropped == counts["dispatched"][0]


def _catches_sighup(pid: int) -> bool:
    """The kernel's word (``SigCgt``) that the process has a handler for SIGHUP."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGHUP - 1)))


def test_sighup_barrage_from_the_first_pumpsync_import_on_never_ends_the_daemon(tmp_path: Path) -> None:
    """The finding: a SIGHUP in the daemon's first 0.15 s (its imports) ended it. The real console
    script; SIGHUPs every few ms from the moment the first pumpsync module is imported
    (PYTHONPROFILEIMPORTTIME tells) until the daemon is ready: it survives and reopens its files."""
    for run in range(3):
        _survives_a_barrage(tmp_path, run)


def _survives_a_barrage(tmp_path: Path, run: int) -> None:
    script = Path(sys.executable).parent / "pumpsync"
    port = free_port()
    env = worktree_env(**KEY_ENV, PYTHONPROFILEIMPORTTIME="1")
    err_path = tmp_path / f"err{run}"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [str(script), "daemon", "--demo", "--provider", "anaxer", "--metrics-addr", f"127.0.0.1:{port}",
             "--sink", f"jsonl:{tmp_path / f'events{run}.jsonl'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: "| pumpsync" in err_path.read_text(errors="replace") or proc.poll() is not None,
                   30, "the first pumpsync import")  # fmt: skip
        assert _catches_sighup(proc.pid), "SIGHUP not caught by the time pumpsync's first module is imported"
        sent = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            proc.send_signal(signal.SIGHUP)
            sent += 1
            try:
                if http_get(f"http://127.0.0.1:{port}/readyz", timeout=0.5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.005)
        assert proc.poll() is None, f"the daemon died after {sent} SIGHUPs: {err_path.read_text()[-2000:]}"
        wait_until(lambda: "SIGHUP: reopening" in err_path.read_text(errors="replace"), what="the reopen")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
