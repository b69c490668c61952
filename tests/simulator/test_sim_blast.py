"""``blast``: benchmark firehose to subscribed connections."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from simhelpers import OP_TRADE, V1_DATA, ax_connect, check_schema, op_connect, recv_json

from pumpsync.simulator import Simulator

SimFactory = Callable[..., Simulator]


def test_blast_openpump_stamped_unique_realistic(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim) as ws:
        recv_json(ws)
        before = time.time_ns()
        assert sim.blast(2000) == 2000
        frames = [ws.recv(timeout=5) for _ in range(2000)]
    parsed = [json.loads(f) for f in frames]
    check_schema(parsed[0], {**OP_TRADE, "simSentNs": "int"})
    assert len({p["signature"] for p in parsed}) == 2000
    assert all(len(p["signature"]) == 88 for p in parsed)
    stamps = [p["simSentNs"] for p in parsed]
    assert stamps == sorted(stamps) and before <= stamps[0] <= time.time_ns()
    assert 200 <= sum(map(len, frames)) / len(frames) <= 400  # ~300 bytes per frame
    assert sim.history("openpump") == []  # benchmarks do not pollute the feed


def test_blast_unstamped_and_only_to_subscribed_anaxer_connections(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as v1, ax_connect(sim) as doc, ax_connect(sim) as idle:
        recv_json(v1), recv_json(doc), recv_json(idle)
        v1.send(json.dumps({"type": "subscribe", "id": "t", "channel": "trades", "filters": {}}))
        doc.send(json.dumps({"subscribe": "trades"}))
        recv_json(v1), recv_json(doc)
        assert sim.blast(300, stamp=False) == 600
        v1_frames = [recv_json(v1) for _ in range(300)]
        doc_frames = [recv_json(doc) for _ in range(300)]
        with pytest.raises(TimeoutError):
            idle.recv(timeout=0.2)
    check_schema(v1_frames[0], V1_DATA)
    assert v1_frames[0]["sub"] == "t" and "simSentNs" not in v1_frames[0]
    assert [f["data"]["signature"] for f in v1_frames] == [f["signature"] for f in doc_frames]


def test_blast_paced_rate(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim) as ws:
        recv_json(ws)
        started = time.monotonic()
        sim.blast(100, rate=400.0)
        elapsed = time.monotonic() - started
        frames = [recv_json(ws) for _ in range(100)]
    assert 0.2 <= elapsed < 2.0  # 100 frames at 400/s take about a quarter second
    span = (frames[-1]["simSentNs"] - frames[0]["simSentNs"]) / 1e9
    assert span >= 0.2
