"""`pumpsync stream` as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pumpsync.events import Event

SECRET = "Zq9-DISTINCTIVE-key-7Yx"
COMMON = {"kind", "provider", "mint", "signature", "slot", "timestamp", "received_at", "connection", "backfill", "raw"}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "PUMPSYNC_API_KEY"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pumpsync", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.fixture
def live_sim():
    from pumpsync.simulator import Simulator

    with Simulator(providers=("openpump", "anaxer"), port=0, rate=60, seed=11, enrich_delay=0.05) as sim:
        yield sim


def test_stream_jsonl_count(live_sim) -> None:
    result = run(
        "stream",
        "--provider",
        "openpump",
        "--url",
        live_sim.url("openpump"),
        "--format",
        "jsonl",
        "--count",
        "20",
        env={"PUMPSYNC_API_KEY": "k"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 20
    for line in lines:
        data = json.loads(line)
        assert set(data) >= COMMON
        assert data["provider"] == "openpump" and data["kind"] in ("new_token", "token_enriched", "trade")
        if data["kind"] == "trade":
            assert {"side", "sol_amount", "token_amount", "trader", "price_sol"} <= set(data)
        assert set(data) == set(Event(data["kind"], "", None, None, None, None, 0, 0, False, {}).to_dict())


def test_stream_anaxer_channels_with_filters(live_sim) -> None:
    result = run(
        "stream",
        "--provider",
        "anaxer",
        "--url",
        live_sim.url("anaxer"),
        "--channel",
        "creations",
        "--channel",
        'trades:{"side":"buy","minSol":0.01}',
        "--format",
        "jsonl",
        "--count",
        "15",
        "--api-key",
        "k",
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 15
    assert {e["kind"] for e in events} <= {"new_token", "trade"}
    assert all(e["side"] == "buy" for e in events if e["kind"] == "trade")
    assert all(isinstance(e["slot"], int) for e in events)


def test_stream_duration_text(live_sim) -> None:
    result = run("stream", "--url", live_sim.url("openpump"), "--duration", "1.5", "--api-key", "k")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") > 3 and (" BUY " in result.stdout or " SELL " in result.stdout)
    # Full mints, pasteable into an explorer (issue 17, item 3): not cut, whatever the line's length.
    mints = {line.split()[3] for line in result.stdout.splitlines()}  # time, provider, kind, mint
    assert all(32 <= len(mint) <= 44 and "…" not in mint for mint in mints), mints


@pytest.mark.parametrize(
    ("key", "code", "words"), [("sim-invalid", "1008", "invalid API key"), ("sim-free", "4001", "plan restriction")]
)
def test_stream_refused_exits_3(live_sim, key: str, code: str, words: str) -> None:
    result = run("stream", "--url", live_sim.url("openpump"), "--api-key", key, "--count", "1")
    assert result.returncode == 3, result.stderr
    assert code in result.stderr and words in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_stream_anaxer_refused_exits_3(live_sim) -> None:
    result = run(
        "stream", "--provider", "anaxer", "--url", live_sim.url("anaxer"), "--api-key", "sim-invalid", "--count", "1"
    )
    assert result.returncode == 3, result.stderr


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--ping-interval", "0"], "--ping-interval"),
        (["--ping-interval", "abc"], "--ping-interval"),
        (["--queue-size", "0"], "--queue-size"),
        (["--provider", "anaxer", "--channel", "trades:{bad"], "--channel"),
        (["--provider", "anaxer", "--channel", "nope"], "--channel"),
        (["--url", "http://example"], "--url"),
        (["--count", "0"], "--count"),
    ],
)
def test_bad_options_one_line_error(args: list[str], flag: str) -> None:
    result = run("stream", "--api-key", "k", *args)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and flag in error_lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_key_is_a_clear_error() -> None:
    result = run("stream", "--count", "1")
    assert result.returncode == 2 and "--api-key" in result.stderr and "PUMPSYNC_API_KEY" in result.stderr


def test_key_never_printed_at_debug_level(live_sim, tmp_path) -> None:
    """Connect, refusals, reconnects, status: the distinctive key appears nowhere in the output."""
    out = []
    for args in (
        ["--url", live_sim.url("openpump"), "--count", "5"],
        ["--url", live_sim.url("openpump"), "--count", "5", "--auth", "header"],
        ["--provider", "anaxer", "--url", live_sim.url("anaxer"), "--count", "5"],
        ["--provider", "anaxer", "--url", live_sim.url("anaxer"), "--count", "5", "--auth", "query"],
    ):
        result = run("stream", "-vv", "--format", "jsonl", *args, env={"PUMPSYNC_API_KEY": SECRET})
        assert result.returncode == 0, result.stderr
        out += [result.stdout, result.stderr]
    key_file = tmp_path / "key"
    key_file.write_text(SECRET)
    refused = run(
        "stream",
        "-vv",
        "--url",
        live_sim.url("openpump").replace(str(live_sim.port("openpump")), "1"),
        "--api-key-file",
        str(key_file),
        "--max-retries",
        "1",
    )
    assert refused.returncode == 1
    out += [refused.stdout, refused.stderr]
    text = "\n".join(out)
    assert "DEBUG" in text and "connecting to" in text
    assert SECRET not in text
