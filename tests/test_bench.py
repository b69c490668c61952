"""Smoke test of ``pumpsync bench``: the harness runs end to end with tiny counts.

Figures are never asserted: on a shared machine they are noise; only that every run
completed and that the report renders.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from click.testing import CliRunner

import pumpsync.cli.bench as bench_cli
from pumpsync.cli import cli
from pumpsync_bench import QUICK, Plan, benchmark


def test_bench_runs_end_to_end() -> None:
    clients = ("pumpsync", "pumpsync-iter", "pumpsync-market", "websockets", "floor")
    plan = Plan(events=300, soak_events=400, seconds=0.3, realistic_seconds=0.3, repeat=1, clients=clients,
                workloads=("bulk", "paced", "realistic", "soak"))  # fmt: skip
    result = benchmark(plan)

    for workload in plan.build():
        for client in plan.clients_for(workload):
            (run,) = result.runs.results[workload.key][client]
            assert "error" not in run, (workload.key, client, run)
            assert run["received"] == run["expected"]
    assert result.runs.results["paced"]["pumpsync"][0]["latency_us"].keys() == {"p50", "p99", "p99_9", "max"}
    assert result.runs.results["bulk"]["pumpsync"][0]["metrics"]["on"]  # the product runs with metrics on

    text = result.text()
    assert "pumpsync Client+get, metrics *" in text and "websockets asyncio" in text and "floor" in text
    assert "Targets (product *):" in text
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["summary"]["soak"]["pumpsync"]["runs"] == 1
    assert len(doc["targets"]) == 16  # #26: bulk and Solana for Client+get and the iterator, #27's market, the rest
    (market,) = result.runs.results["bulk"]["pumpsync-market"]  # #27 item 5: the market view applied every event
    assert market["market_applied"] == 300 and market["market_bad"] == 0
    assert "pumpsync-market" not in result.runs.results["paced"]  # bulk only
    assert any("market view" in t["text"] for t in doc["targets"])  # judged only where the capacity run vouches
    (null_run,) = result.runs.results["bulk"]["null"]  # the capacity run, on the firehose workloads only
    assert null_run["received"] == 300 and "null" not in result.runs.results["paced"]
    assert result.runs.results["bulk"]["pumpsync"][0]["server"]["send_rate"] > 0
    assert set(doc["capacity"]) == {"bulk"} and "Server capacity" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--quick"], QUICK),
        (["--repeat", "5", "--events", "1000", "--client", "ws-recv", "--workload", "soak", "--workload", "bulk"],
         Plan(repeat=5, events=1000, clients=("ws-recv",), workloads=("bulk", "soak"), feed_clients=None)),
        (["--workload", "fanout", "--workload", "pumpportal", "--fanout-events", "500", "--fanout-consumers", "3",
          "--feed-events", "700"],
         Plan(workloads=("pumpportal", "fanout"), fanout_events=500, fanout_consumers=3, feed_events=700)),
        (["--quick", "--workload", "solana"], dataclasses.replace(QUICK, workloads=("solana",))),
    ],
)  # fmt: skip
def test_bench_options_make_the_plan(monkeypatch: pytest.MonkeyPatch, args: list[str], expected: Plan) -> None:
    seen: list[Plan] = []

    class _Result:
        def text(self) -> str:
            return "table"

    def fake(plan: Plan, progress: Any = None) -> _Result:
        seen.append(plan)
        return _Result()

    monkeypatch.setattr(bench_cli, "benchmark", fake)
    outcome = CliRunner().invoke(cli, ["bench", *args])
    assert outcome.exit_code == 0, outcome.output
    assert seen == [expected]
    assert outcome.output.strip().splitlines()[0] == "table"
    assert ("fanout" in outcome.output) == (args == ["--quick"])  # the note on what --quick leaves out
