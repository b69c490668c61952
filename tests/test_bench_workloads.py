"""``pumpsync bench``'s PumpPortal, Solana and fan-out workloads end to end at tiny counts.

As in test_bench.py: every run completes, the JSON has its structure, the report renders;
figures are never asserted.
"""

from __future__ import annotations

import json
import os

import pytest

import pumpsync_bench.fanout as fanout
from pumpsync.simulator.simulator import SERVERS
from pumpsync_bench import Plan, benchmark
from pumpsync_bench.clients import CLIENTS

FEEDS = ("pumpportal", "solana")


def test_provider_workloads_read_the_same_frames() -> None:
    clients = ("pumpsync", "pumpsync-iter", "websockets", "ws-recv", "ws-app", "floor")
    clients += ("picows",) if CLIENTS["picows"].available() else ()
    plan = Plan(feed_events=300, repeat=1, clients=clients, workloads=FEEDS, feed_clients=None)
    result = benchmark(plan)

    doc = json.loads(json.dumps(result.to_json()))
    for workload in FEEDS:
        if workload not in SERVERS:  # the Solana node is not in this version's simulator
            assert "no solana provider" in doc["skipped"][workload]
            assert f"not measured: {workload}" in result.text()
            continue
        for client in clients:
            (run,) = doc["runs"][workload][client]
            assert "error" not in run, (workload, client, run)
            assert run["received"] == run["expected"] == 300
            assert run["server"]["frames"] == 300  # one frame per event: the clients read the same frames
            assert doc["summary"][workload][client].keys() >= {"events_per_s", "cpu_us_per_event"}
        assert set(doc["ratios"]["websockets"]) >= {"PP events/s", "Sol CPU/event"}
    text = result.text()
    assert "pumpportal 300" in text and "PP events/s" in text
    assert "Targets (product *):" in text


def test_fanout_through_a_real_redis() -> None:
    reason = fanout.unavailable()
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    plan = Plan(seconds=0.3, repeat=1, clients=("pumpsync", "websockets"), workloads=("fanout",),
                fanout_events=300, fanout_consumers=2)  # fmt: skip
    result = benchmark(plan)

    doc = json.loads(json.dumps(result.to_json()))
    assert list(doc["runs"]["fanout"]) == ["pumpsync"]  # the product only: its reference is its direct connection
    (run,) = doc["runs"]["fanout"]["pumpsync"]
    assert "error" not in run, run
    assert run["direct"]["received"] == run["direct"]["expected"] == 600  # 2,000/s for 0.3 s
    assert [r["received"] for r in run["latency_runs"]] == [600, 600]
    assert [r["received"] for r in run["throughput_runs"]] == [300, 300]
    assert not any("samples_ns" in r for r in run["latency_runs"])  # pooled, then dropped
    assert run["latency_us"].keys() == {"p50", "p99", "p99_9", "max"}
    assert doc["summary"]["fanout"]["pumpsync"].keys() >= {"p50", "p99", "direct_p50", "direct_p99", "events_per_s"}
    text = result.text()
    assert "Fan-out through Redis" in text and "the hop adds" in text and "2 consumers" in text
    assert "us CPU per event" in text


def test_fanout_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "unavailable", lambda: "redis-server is not installed (test)")
    plan = Plan(repeat=1, clients=("pumpsync",), workloads=("fanout",))
    result = benchmark(plan)
    assert result.runs.skipped == {"fanout": "redis-server is not installed (test)"}
    assert result.to_json()["skipped"] == {"fanout": "redis-server is not installed (test)"}
    assert "not measured: fanout (redis-server is not installed (test))" in result.text()


def test_redis_process_stops_and_cleans_up() -> None:
    reason = fanout.unavailable()
    if reason is not None:
        pytest.skip(reason)
    server = fanout.RedisProcess()
    assert server.client.ping()
    workdir = server._dir.name
    server.close()
    assert server._proc.poll() is not None
    assert not os.path.exists(workdir)
