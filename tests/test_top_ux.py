"""`pumpsync top` for a user's second hour (issue 28): free providers need no key, each source's
own key, sources told apart, a hint where trades cannot come, a sliding launches/min, and
something useful (and an end) when the output is not a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

import pumpsync
from pumpsync.cli._top_model import NO_TRADES_AFTER, TopModel
from pumpsync.cli._top_screen import render
from pumpsync.simulator import Simulator
from tests.test_top import ROOT, Tmux, _command, event, tmux  # noqa: F401 - the fixture


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not (k.startswith("PUMPSYNC_") and k.endswith("API_KEY"))}
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pumpsync", *args], capture_output=True, text=True, timeout=timeout,
        env={**base, **(env or {})},
    )  # fmt: skip


def test_launches_per_minute_counts_the_real_minute_behind_each_sample() -> None:
    model = TopModel(started=0.0)
    for i in range(30):  # one launch every 4 s for two minutes
        model.observe(event("new_token", mint=f"M{i}"), now=i * 4.0 + 0.5)
    model.expire(now=120.0)
    samples = model.launches_per_minute(now=120.0, n=20)
    assert len(samples) == 20
    assert all(14 <= s <= 16 for s in samples), samples  # 15 a minute, never 0 <-> 90
    assert model.launches_per_minute(now=2.0, n=20) == [0.0, 1.0, 1.0]  # just after the start: what was seen


def test_the_screen_says_why_no_trades_come_and_names_every_connections_source() -> None:
    model = TopModel(started=0.0)
    model.trades_hint = "trades only for the mints you name"
    model.observe(event("new_token"), now=1.0)
    stats = {
        "sources": {
            "pumpportal": {"connections": [{"index": 0, "state": "open"}]},
            "eu": {"connections": [{"index": 0, "state": "open"}, {"index": 1, "state": "connecting"}]},
        },
        "connections": [],
    }
    console = Console(record=True, width=120, height=40, color_system=None)
    console.print(render(model, stats, "h", now=NO_TRADES_AFTER + 2, width=120, height=40))
    screen = console.export_text()
    assert "no trades yet: trades only for the mints you name" in screen
    assert "pumpportal #0" in screen and "eu #0" in screen and "eu #1" in screen


def test_top_replays_a_recording_without_a_key_and_piped_prints_the_last_screen_and_ends(tmp_path: Path) -> None:
    with (
        Simulator(providers=("openpump",), port=0, rate=0, seed=8) as sim,
        pumpsync.connect("openpump", api_key="k", url=sim.url("openpump")) as client,
    ):
        sim.wait_for_connections("openpump", 1)
        sim.emit(3, "launch")
        events = [client.get(timeout=10) for _ in range(3)]
    recording = tmp_path / "events.jsonl"
    recording.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    done = _cli("top", "--provider", "replay", "--url", f"file:{recording}", "--speed", "0")
    assert done.returncode == 0, done.stderr
    assert "the recording has ended" in done.stdout and "newest launches" in done.stdout
    assert any(e.mint and e.mint in done.stdout for e in events if e.kind == "new_token")
    assert "\x1b" not in done.stdout  # plain text, no screen codes


def test_top_with_sources_uses_each_providers_own_key_and_refuses_a_provider_beside_them() -> None:
    with Simulator(providers=("openpump", "anaxer"), port=0, rate=20, seed=3) as sim:
        args = ["top", "--source", f"openpump={sim.url('openpump')}", "--source", f"anaxer={sim.url('anaxer')}"]
        keys = {"PUMPSYNC_OPENPUMP_API_KEY": "k1", "PUMPSYNC_ANAXER_API_KEY": "k2"}
        done = _cli(*args, "--duration", "2", env=keys)
        assert done.returncode == 0, done.stderr
        assert "openpump #0" in done.stdout and "anaxer #0" in done.stdout
        assert "k1" not in done.stdout + done.stderr and "k2" not in done.stdout + done.stderr
        refused = _cli(*args, "--provider", "openpump", "--duration", "1", env=keys)
        assert refused.returncode == 2 and "give either --provider or --source" in refused.stderr


def test_top_in_a_pseudo_terminal_tells_two_sources_apart_without_a_key_for_the_free_one(tmux: Tmux) -> None:  # noqa: F811
    with Simulator(providers=("openpump", "pumpportal"), port=0, rate=30, seed=4) as sim:
        cmd = _command(
            "top", "--source", f"openpump={sim.url('openpump')}", "--source", f"pumpportal={sim.url('pumpportal')}"
        )
        tmux.start(cmd)
        screen = tmux.wait_for(lambda s: "openpump #0" in s and "pumpportal #0" in s and "newest launches" in s)
        assert "Traceback" not in screen
        tmux.run("send-keys", "-t", "t", "C-c")
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen
