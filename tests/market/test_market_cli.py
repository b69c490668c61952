"""`pumpsync stream` market filters and `pumpsync top`'s market columns, on a replayed recording."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mkthelpers import T0, launch, trade
from rich.console import Console

from pumpsync.cli._top_model import TopModel
from pumpsync.cli._top_screen import render
from pumpsync.events import Event
from pumpsync.market import Market

ROOT = Path(__file__).resolve().parents[2]
BIG, SMALL = "BigMint1111111111111111111111111111111pump", "SmallMint111111111111111111111111111111pump"


def recording(path: Path) -> Path:
    events = [
        launch(mint=BIG, creator="devB", sig="LB"),
        launch(mint=SMALL, creator="devS", sig="LS"),
        trade("A", "buy", 100_000_000, 4.0, mint=BIG, ms=T0 + 10),  # 4e-8 SOL/token: 40 SOL market cap
        trade("B", "buy", 100_000_000, 2.5, mint=SMALL, ms=T0 + 20),  # 25 SOL
        trade("C", "buy", 10_000_000, 0.5, mint=BIG, ms=T0 + 30),  # 50 SOL
    ]
    path.write_text("".join(json.dumps(e.to_dict()) + "\n" for e in events))
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPSYNC_")}
    env["PYTHONPATH"] = str(ROOT)
    cmd = [sys.executable, "-m", "pumpsync", "stream", "--provider", "replay", "--speed", "0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def test_stream_prints_only_the_events_of_mints_that_pass(tmp_path: Path) -> None:
    url = f"file:{recording(tmp_path / 'r.jsonl')}"
    proc = run("--url", url, "--format", "jsonl", "--min-mc-usd", "5000", "--sol-usd", "150")  # 33.3 SOL
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(e["kind"], e["mint"]) for e in lines] == [("trade", BIG), ("trade", BIG)]
    proc = run("--url", url, "--format", "jsonl", "--min-mc-sol", "45")
    assert [json.loads(line)["trader"] for line in proc.stdout.splitlines()] == ["C"]


def test_a_usd_filter_without_a_price_is_a_clear_usage_error(tmp_path: Path) -> None:
    proc = run("--url", f"file:{recording(tmp_path / 'r.jsonl')}", "--min-mc-usd", "5000")
    assert proc.returncode == 2 and proc.stdout == ""
    assert "min-mc-usd" in proc.stderr and "--sol-usd PRICE or --pyth-rpc URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_top_shows_and_sorts_by_the_market_figures(tmp_path: Path) -> None:
    model = TopModel(started=0.0, market=Market(sol_usd=150.0), sort="market_cap")
    for line in recording(tmp_path / "r.jsonl").read_text().splitlines():
        model.observe(Event.from_dict(json.loads(line)), now=1.0)
    (first, count, _), (second, *_) = model.most_traded(5)
    assert (first.mint, count, second.mint) == (BIG, 2, SMALL)
    console = Console(record=True, width=140, height=40, color_system=None)
    console.print(render(model, {"connections": []}, "pumpsync top: test", now=2.0, width=140, height=40))
    screen = console.export_text()
    assert "top by market_cap" in screen and "$7.5k" in screen  # 50 SOL x 150
    big_row = next(row for row in screen.splitlines() if row.startswith(f" {BIG}"))
    assert big_row.split()[-2:] == ["2", "0.0"]  # 2 holders; the developer bought nothing
