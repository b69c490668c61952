"""``pumpsync daemon`` with several sources: ``[[sources]]`` in the config file, one stream into
the sinks, the race in the metrics."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import FAST_FLAGS, clean_env, wait_until
from test_prometheus import PROMETHEUS, Prometheus, assert_all_return_data, dashboard_queries

from pumpsync.simulator import Simulator

OP_KEY = "op-DISTINCTIVE-daemon-key-11"
AX_KEY = "ax-DISTINCTIVE-daemon-key-22"


def config_file(tmp_path: Path, sim: Simulator, sink: str = "") -> Path:
    (tmp_path / "op.key").write_text(OP_KEY + "\n")
    path = tmp_path / "multi.toml"
    path.write_text(
        f"""
race_window = 1
{sink}

[[sources]]
provider = "openpump"
url = "{sim.url("openpump")}"
api_key_file = "{tmp_path / "op.key"}"

[[sources]]
provider = "anaxer"
name = "ax"
url = "{sim.url("anaxer")}"
rest_url = "{sim.rest_url("anaxer")}"
channels = {{ creations = {{}}, trades = {{}} }}
"""
    )
    return path


def daemon_cmd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pumpsync", "daemon", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_check_shows_the_sources_and_no_key(sim: Simulator, tmp_path: Path) -> None:
    path = config_file(tmp_path, sim)
    env = clean_env(PUMPSYNC_ANAXER_API_KEY=AX_KEY)
    result = daemon_cmd("--config", str(path), "--check", env=env)
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    sources = described["client"]["sources"]
    assert [s["provider"] for s in sources] == ["openpump", "anaxer"] and sources[1]["name"] == "ax"
    assert OP_KEY not in result.stdout and AX_KEY not in result.stdout
    wrong = daemon_cmd("--config", str(path), "--check", "--url", "ws://127.0.0.1:1/", env=env)
    assert wrong.returncode == 2 and "[[sources]]" in wrong.stderr


def test_one_stream_into_sqlite_and_the_race_in_the_metrics(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    path = config_file(tmp_path, sim, sink=f'sinks = [{{ type = "sqlite", path = "{db}" }}]')
    sim.set_feed("anaxer", delay=(0.05, 0.1))
    daemon = start_daemon(["--config", str(path), *FAST_FLAGS, "--log-level", "debug"],
                          env=clean_env(PUMPSYNC_ANAXER_API_KEY=AX_KEY))  # fmt: skip
    daemon.wait_ready()
    sim.wait_for_connections("openpump", 1)
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    wait_until(lambda: len(sim.connections("anaxer")[0].subscriptions) == 2, what="both channels")
    events = sim.emit(10, kind="launch")
    mints = {e.mint for e in events if type(e).__name__ == "Launch"}

    def launches() -> Counter[str]:
        with sqlite3.connect(db, timeout=10) as conn:
            rows = conn.execute("SELECT mint FROM events WHERE kind = 'new_token'").fetchall()
        return Counter(mint for (mint,) in rows)

    wait_until(lambda: db.exists() and set(launches()) >= mints, what="every launch in SQLite")
    wait_until(
        lambda: daemon.sample("pumpsync_source_first_deliveries_total", source="openpump", kind="new_token") == 10,
        what="the race decided",
    )
    assert daemon.sample("pumpsync_source_up", source="ax") == 1
    assert daemon.stop() == 0
    assert launches() == Counter(mints)  # each launch once, though both sources carried it
    for key in (OP_KEY, AX_KEY):
        assert key not in daemon.stderr and key not in daemon.stdout


@pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is not installed")
def test_the_dashboards_sources_row_returns_data(sim: Simulator, start_daemon: Any, tmp_path: Path) -> None:
    path = config_file(tmp_path, sim)
    sim.set_feed("anaxer", delay=(0.05, 0.1))
    daemon = start_daemon(["--config", str(path), *FAST_FLAGS], env=clean_env(PUMPSYNC_ANAXER_API_KEY=AX_KEY))
    daemon.wait_ready()
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{daemon.metrics_port}")
    try:
        sim.wait_for_connections("anaxer", 1, subscribed=True)
        wait_until(lambda: len(sim.connections("anaxer")[0].subscriptions) == 2, what="both channels")
        sim.emit(20)
        queries = dashboard_queries(sources=True)
        assert len(queries) >= 5
        assert_all_return_data(prometheus, queries)
    finally:
        prometheus.stop()
    assert daemon.stop() == 0
