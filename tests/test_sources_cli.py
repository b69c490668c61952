"""Several sources from the command line: `pumpsync stream --source ...` and `pumpsync demo --race`."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest

from pumpsync.simulator import Simulator
from tests.test_cli import run

OP_SECRET = "Op7-DISTINCTIVE-key-41x"
AX_SECRET = "Ax3-DISTINCTIVE-key-92q"


@pytest.fixture
def live_sim() -> Iterator[Simulator]:
    with Simulator(providers=("openpump", "anaxer"), port=0, rate=40, seed=5, enrich_delay=0.05) as sim:
        sim.set_feed("anaxer", delay=(0.05, 0.1))
        yield sim


def test_stream_two_sources_one_stream_and_the_race(live_sim: Simulator) -> None:
    result = run(
        "stream",
        "--source",
        f"openpump={live_sim.url('openpump')}",
        "--source",
        f"anaxer:creations,trades={live_sim.url('anaxer')}",
        "--format",
        "jsonl",
        "--duration",
        "3",
        "-vv",
        env={"PUMPSYNC_OPENPUMP_API_KEY": OP_SECRET, "PUMPSYNC_ANAXER_API_KEY": AX_SECRET},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    launches = Counter(e["mint"] for e in events if e["kind"] == "new_token")
    trades = Counter((e["signature"], e["side"]) for e in events if e["kind"] == "trade")
    assert launches and set(launches.values()) == {1}  # each launch once, from either provider
    assert trades and set(trades.values()) == {1}
    assert {e["provider"] for e in events} >= {"openpump"}
    assert "Race between openpump and anaxer." in result.stderr
    for secret in (OP_SECRET, AX_SECRET):
        assert secret not in result.stderr and secret not in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source", "openpump", "--url", "ws://127.0.0.1:1/v1/stream"], "--url apply to one provider"),
        (["--source", "nosuch"], "'nosuch' is not one of"),
        (["--source", "openpump", "--provider", "anaxer"], "either --provider or --source"),
    ],
)
def test_bad_source_options_one_line_error(args: list[str], words: str) -> None:
    result = run("stream", *args, "--duration", "1")
    assert result.returncode == 2
    assert words in result.stderr, result.stderr


def test_two_keyed_sources_never_share_one_key() -> None:
    result = run("stream", "--source", "openpump", "--source", "anaxer", "--api-key", OP_SECRET, "--duration", "1")
    assert result.returncode == 2 and "give each Source its own" in result.stderr
    assert OP_SECRET not in result.stderr


def test_demo_race_prints_the_summary() -> None:
    result = run("demo", "--race", "--duration", "3", "--rate", "30", "--seed", "3", "--metrics-addr", "off")
    assert result.returncode == 0, result.stderr[-2000:]
    simulated = re.findall(r"pumpsync demo: simulated (\S+) at ", result.stderr)
    assert {"openpump", "anaxer"} <= set(simulated)  # every simulated provider (more as they are added)
    assert f"one market, {len(simulated)} sources" in result.stderr
    assert "Race between " in result.stderr and "first for" in result.stderr
    assert result.stdout.count("\n") > 10
