"""The daemon's run-time reload (SIGHUP: the sinks reopen their files) in a tight loop while the
simulator cuts every connection every 20 ms, under CPU load: the daemon never hangs, every event
lands in the file exactly once (once one has: see the test), and SIGTERM still ends it with status 0.
``PUMPSYNC_CHURN_SECONDS`` sets the churn's length (default 2 s)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from daemonhelpers import clean_env, wait_until
from test_daemon import KEY_ENV, anaxer_args, expected_anaxer

from pumpsync.simulator import Simulator

CHURN_SECONDS = float(os.environ.get("PUMPSYNC_CHURN_SECONDS", "2"))


def test_sighup_in_a_loop_while_connections_are_cut(
    sim: Simulator, start_daemon: Any, tmp_path: Path, cpu_load: None
) -> None:
    path = tmp_path / "events.jsonl"
    daemon = start_daemon(anaxer_args(sim, "--sink", f"jsonl:{path}"), env=clean_env(**KEY_ENV))
    daemon.wait_ready()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    # One event through first: an outage before any event has no slot to recover from with Anaxer
    # (reported lost: tests/test_outage_before_first_event.py); this test is about the churn.
    sim.emit(1, kind="launch")
    wait_until(lambda: path.exists() and path.read_text().count("\n") >= 1, timeout=15, what="the first event")
    stop = threading.Event()

    def cutter() -> None:
        while not stop.is_set():
            sim.drop("anaxer")
            stop.wait(0.02)

    def reloader() -> None:
        while not stop.is_set():
            daemon.signal(signal.SIGHUP)
            stop.wait(0.02)

    threads = [threading.Thread(target=cutter), threading.Thread(target=reloader)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CHURN_SECONDS
    try:
        while time.monotonic() < deadline:  # events keep coming while both churn
            sim.emit(2)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    sim.emit(5)  # after the churn: the stream works again
    expected = expected_anaxer(sim)
    total = sum(expected.values())

    def written() -> int:
        return len(path.read_text().splitlines()) if path.exists() else 0

    wait_until(lambda: written() == total, timeout=30, what=f"all {total} events in the file")
    assert daemon.stop(timeout=30) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert Counter((e["kind"], e["signature"]) for e in lines) == expected
    assert "Traceback" not in daemon.stderr
