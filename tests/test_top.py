"""`pumpsync top` (issue 17, item 11): the figures, and the screen as a terminal shows it.

The screen test runs the real command in a tmux pseudo-terminal against the simulator and
reads the screen back with ``tmux capture-pane``, waiting on what it shows (with deadlines).
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

import pumpsync
from pumpsync.cli._top_model import CURVE_TOKENS, TRADE_WINDOW, TopModel, bar, sparkline
from pumpsync.cli._top_screen import render
from pumpsync.events import Event
from pumpsync.simulator import Simulator

ROOT = Path(__file__).resolve().parents[1]
MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def event(kind: str, mint: str = MINT, **fields: object) -> Event:
    return Event(kind, "anaxer", mint, "sig", 1, None, 1_700_000_000_000, 0, False, {})._replace(**fields)


def test_sparkline_and_bar() -> None:
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert bar(0.5, 4) == "██··" and bar(1.0, 3) == "███" and bar(0.0, 2) == "··"


def test_the_model_ranks_by_volume_and_follows_the_curve_from_the_launch() -> None:
    model = TopModel(started=0.0)
    model.observe(event("new_token", symbol="PEPE", name="Pepe"), now=1.0)
    model.observe(event("trade", side="buy", sol_amount=2.0, token_amount=CURVE_TOKENS / 4), now=2.0)
    model.observe(event("trade", side="sell", sol_amount=1.0, token_amount=CURVE_TOKENS / 8), now=3.0)
    model.observe(event("trade", mint="OTHER", side="buy", sol_amount=0.5, token_amount=1.0), now=3.5)
    (first, count, volume), (second, *_) = model.most_traded(5)
    assert (first.mint, first.symbol, count, volume) == (MINT, "PEPE", 2, 3.0)
    assert first.progress == pytest.approx(12.5)
    assert second.mint == "OTHER" and second.progress is None  # its launch was not seen
    assert model.trades_per_second(now=5.0, n=10) == [0.0, 0.0, 1.0, 2.0, 0.0]
    model.observe(event("graduation", liquidity_sol=79.0), now=4.0)
    assert first.progress == 100.0 and len(model.graduations) == 1
    model.expire(now=3.0 + TRADE_WINDOW + 1)  # the window has passed every trade
    assert model.most_traded(5) == []


def test_the_screen_shows_full_mints_health_and_untrusted_text_made_safe() -> None:
    model = TopModel(started=0.0)
    model.observe(event("new_token", symbol="\x1b[2J", name="x\x07"), now=1.0)
    model.observe(event("trade", side="buy", sol_amount=1.0, token_amount=10.0), now=1.5)
    stats = {
        "delivered": 2,
        "queue_depth": 0,
        "queue_capacity": 10,
        "connections": [{"index": 0, "state": "open", "connects": 3, "last_rtt": 0.0021, "last_event_at": time.time()}],
    }
    console = Console(record=True, width=100, height=30, color_system=None)
    console.print(render(model, stats, "pumpsync top: test", now=12.0, width=100, height=30))
    screen = console.export_text()
    assert screen.count(MINT) == 2  # newest launches, most traded
    assert "2.1 ms" in screen and "open" in screen  # heartbeat round trip; 3 connects = 2 reconnects
    assert "\x1b" not in screen and "\x07" not in screen


class Tmux:
    """One tmux server of our own (its own socket), so nothing else on the machine is touched."""

    def __init__(self, width: int, height: int) -> None:
        self.socket = f"pumpsync-test-{uuid.uuid4().hex[:8]}"
        self.size = (width, height)

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True).stdout

    def start(self, command: str) -> None:
        width, height = self.size
        self.run("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed what was expected:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the pseudo-terminal test needs it")
    session = Tmux(100, 36)
    try:
        yield session
    finally:
        session.kill()


def _command(*args: str) -> str:
    env = f"PYTHONPATH={shlex.quote(str(ROOT))} PUMPSYNC_API_KEY=k TERM=xterm-256color"
    cli = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "pumpsync", *args))
    # The exit status stays on the screen after the view has given the terminal back.
    return f"env {env} {cli}; echo EXIT=$?; sleep 600"


def test_top_in_a_pseudo_terminal_against_the_simulator(tmux: Tmux) -> None:
    with Simulator(providers=("openpump",), port=0, rate=40, seed=5, enrich_delay=0.05) as sim:
        tmux.start(_command("top", "--provider", "openpump", "--url", sim.url("openpump")))
        screen = tmux.wait_for(lambda s: "most traded" in s and "newest launches" in s and " open " in s)

        def shows_a_launch(s: str) -> bool:  # a full mint that the simulator launched
            return any(r["mint"] in s for r in sim.history("openpump") if r.get("type") == "new_token")

        screen = tmux.wait_for(shows_a_launch)
        assert "trades/s" in screen and "launches/min" in screen and "heartbeat rtt" in screen
        assert "Traceback" not in screen
        tmux.run("send-keys", "-t", "t", "C-c")
        screen = tmux.wait_for(lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen and "Traceback" not in screen


def test_demo_on_a_terminal_is_the_live_view_and_records_for_replay(tmux: Tmux, tmp_path: Path) -> None:
    record = tmp_path / "demo.jsonl"
    tmux.start(_command("demo", "--metrics-addr", "off", "--rate", "30", "--duration", "4", "--record", str(record)))
    tmux.wait_for(lambda s: "newest launches" in s and "connections" in s)
    screen = tmux.wait_for(lambda s: "EXIT=" in s)
    assert "EXIT=0" in screen, screen
    assert "events recorded in" in screen
    lines = record.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.startswith('{"kind":') for line in lines)


def test_warnings_show_at_the_foot_of_the_screen_not_across_it(tmux: Tmux) -> None:
    with Simulator(providers=("anaxer",), port=0, rate=40, seed=6) as sim:
        args = ["top", "--provider", "anaxer", "--url", sim.url("anaxer"), "--api-key", "sim-free"]
        tmux.start(_command(*args, "--channel", "creations", "--channel", "trades"))  # the free plan refuses trades
        screen = tmux.wait_for(lambda s: "warning:" in s and "trades" in s and "newest launches" in s)
        assert screen.splitlines()[0].startswith("pumpsync top: anaxer")  # the header is still the first line
        assert "sim-free" not in screen


def test_top_replays_a_recording_and_keeps_its_last_screen(tmux: Tmux, tmp_path: Path) -> None:
    recording = tmp_path / "events.jsonl"
    with Simulator(providers=("openpump",), port=0, rate=0, seed=8) as sim:
        client = pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"))
        with client:
            sim.wait_for_connections("openpump", 1)
            sim.emit(3, "launch")
            events = [client.get(timeout=10) for _ in range(3)]
    recording.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    tmux.start(_command("top", "--provider", "replay", "--url", f"file:{recording}", "--speed", "0"))
    screen = tmux.wait_for(lambda s: "the recording has ended" in s)
    assert any(e.mint is not None and e.mint in screen for e in events if e.kind == "new_token"), screen
