"""The firehose (pre-encoded frames in large writes) and the report's judgement of its runs.

Real sockets on 127.0.0.1 against a real simulator for the protocol and the frames; the
server-bound marking and the capacity verdict are checked on hand-made run results, so that no
assertion depends on a timing.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
import websocket

from pumpsync.simulator import Simulator
from pumpsync.simulator.blast import trade_pool
from pumpsync_bench import Plan, Result
from pumpsync_bench.clients import Feed
from pumpsync_bench.firehose import Dialect, Firehose, Template, build, capture, frame
from pumpsync_bench.report import (
    MARKET_US_PER_EVENT,
    Target,
    market_cost,
    ratios,
    summarize,
    targets,
    verdict_lines,
    verdicts,
)
from pumpsync_bench.runner import Runs

# ---------------------------------------------------------------- judging runs (no timing)


def _run(rate: float, send_rate: float | None = 1e7, cpu: float = 5.0) -> dict[str, Any]:
    server = {"frames": 1000, "wall_s": 0.1, "cpu_s": 0.01}
    if send_rate is not None:
        server["send_rate"] = send_rate
    return {"received": 1000, "expected": 1000, "events_per_s": rate, "cpu_us_per_event": cpu, "server": server}


def _runs(by_client: dict[str, list[dict[str, Any]]], workload: str = "bulk") -> Runs:
    runs = Runs()
    for client, results in by_client.items():
        for result in results:
            runs.add(workload, client, result)
    return runs


def test_a_run_near_the_servers_rate_is_server_bound_and_left_out() -> None:
    runs = _runs({
        "null": [_run(5e6)],
        "pumpsync": [_run(100_000, send_rate=105_000), _run(90_000), _run(110_000)],  # first: 95 % of the server
        "websockets": [_run(50_000)] * 3,
        "picows": [_run(200_000, send_rate=210_000)] * 3,  # every run server-bound
    })  # fmt: skip
    summary = summarize(runs)
    assert summary["bulk"]["pumpsync"]["server_bound"] == 1 and summary["bulk"]["pumpsync"]["runs"] == 2
    assert summary["bulk"]["pumpsync"]["events_per_s"] == 100_000  # the median of 90,000 and 110,000
    assert summary["bulk"]["picows"]["runs"] == 0 and "events_per_s" not in summary["bulk"]["picows"]
    assert summary["bulk"]["null"]["server_bound"] == 0  # the capacity run is never "server-bound"

    plan = Plan(clients=("pumpsync", "websockets", "picows"), workloads=("bulk",))
    assert ratios(plan, summary)["picows"]["bulk events/s"] is None  # left out of every ratio
    assert ratios(plan, summary)["websockets"]["bulk events/s"] == pytest.approx(2.0)
    picows_target = next(t for t in targets(summary) if t.text.startswith("bulk Client+get >= 0.8x picows"))
    assert picows_target.met is None  # and out of the target
    text = "\n".join(verdict_lines(summary, runs))
    assert "server-bound, left out: bulk picows + json.loads, 3 of 3" in text
    assert "server-bound, left out: bulk pumpsync Client+get, metrics, 1 of 3" in text


def test_capacity_below_twice_the_fastest_client_cannot_judge() -> None:
    fine = summarize(_runs({"null": [_run(500_000)], "pumpsync": [_run(200_000)], "websockets": [_run(100_000)]}))
    assert verdicts(fine)["bulk"].judged
    assert "the clients are measured" in "\n".join(verdict_lines(fine, Runs()))

    tight = summarize(_runs({"null": [_run(390_000)], "pumpsync": [_run(200_000)], "websockets": [_run(100_000)]}))
    verdict = verdicts(tight)["bulk"]
    assert not verdict.judged and verdict.fastest == "pumpsync" and verdict.capacity == 390_000
    assert "CANNOT JUDGE" in "\n".join(verdict_lines(tight, Runs()))
    plan = Plan(clients=("pumpsync", "websockets"), workloads=("bulk",))
    assert ratios(plan, tight)["websockets"]["bulk events/s"] is None
    assert all(t.met is None for t in targets(tight) if t.text.startswith("bulk"))

    missing = summarize(_runs({"pumpsync": [_run(200_000)]}))  # no capacity run at all: no judgement either
    assert not verdicts(missing)["bulk"].judged


def test_the_market_views_cost_is_its_clients_cpu_over_the_iterators() -> None:
    """#27 item 5: the market client runs in bulk only; its cost is a difference of two same-run medians."""
    plan = Plan(clients=("pumpsync", "pumpsync-iter", "pumpsync-market", "websockets"))
    by_key = {w.key: w for w in plan.build()}
    assert "pumpsync-market" in plan.clients_for(by_key["bulk"])
    for key in ("paced", "realistic", "soak", "pumpportal", "solana"):
        assert "pumpsync-market" not in plan.clients_for(by_key[key])

    def market(cpu: float) -> Target:
        summary = summarize(_runs({"null": [_run(5e6)], "pumpsync-iter": [_run(100_000, cpu=6.0)] * 3,
                                   "pumpsync-market": [_run(80_000, cpu=cpu)] * 3}))  # fmt: skip
        assert market_cost(summary) == pytest.approx(cpu - 6.0)
        return next(t for t in targets(summary) if "market view" in t.text)

    assert market(9.0).met is True and market(9.0).value == "3.00 us"
    assert market(6.0 + MARKET_US_PER_EVENT + 1).met is False
    assert "pumpsync-market" not in ratios(plan, summarize(_runs({"pumpsync": [_run(1.0)]})))  # not a baseline
    nothing = summarize(_runs({"null": [_run(5e6)], "pumpsync-market": [_run(80_000)]}))
    assert market_cost(nothing) is None  # no iterator in the run: not judged


def test_report_shape_with_a_cannot_judge_workload() -> None:
    runs = _runs({"null": [_run(150_000)], "pumpsync": [_run(100_000)], "websockets": [_run(60_000)]})
    plan = Plan(clients=("pumpsync", "websockets"), workloads=("bulk",), repeat=1)
    result = Result(plan, runs, {"system": "s", "cpu": "c", "cpus": 2, "python": "p", "packages": {},
                                 "busy_before": 0.5, "busy_after": 0.1, "load_average": 3.0}, 1.0)  # fmt: skip
    text = result.text()
    assert "capacity: null client (discard)" in text  # its row in the table
    assert "CANNOT JUDGE" in text and "WARNING: the machine was busy" in text and "load average 3" in text
    doc = json.loads(json.dumps(result.to_json()))
    assert doc["capacity"]["bulk"]["judged"] is False and doc["capacity"]["bulk"]["fastest"] == "pumpsync"
    assert "null" not in doc["ratios"]


# ---------------------------------------------------------------- the server, over real sockets


@pytest.fixture(scope="module")
def hose() -> Any:
    with Simulator(providers=("openpump", "solana"), port=0, rate=0, seed=3) as sim:
        pool = trade_pool(3 + 1_000_003)
        dialects = {p: capture(sim, Feed(p, sim.url(p)), pool, hello_expected=p == "solana",
                               pings=('{"type":"ping"}',) if p == "openpump" else ())
                    for p in ("openpump", "solana")}  # fmt: skip
        server = Firehose(dialects)
        try:
            yield server
        finally:
            server.close()


def _connect(hose: Firehose, provider: str) -> websocket.WebSocket:
    feed = Feed(provider, hose.url(provider))
    return websocket.create_connection(feed.ws_url(), timeout=10.0)


def test_frames_are_the_simulators_with_a_fresh_serial(hose: Firehose) -> None:
    dialect = hose.dialects["openpump"]
    blast = build(dialect, 3 * len(dialect.templates))
    data = b"".join(blast.chunks)
    frames = []
    while data:
        n = data[1] & 0x7F
        at = 2 if n < 126 else 4
        n = n if n < 126 else int.from_bytes(data[2:4], "big")
        frames.append(json.loads(data[at : at + n]))
        data = data[at + n :]
    assert len(frames) == blast.frames == 3 * len(dialect.templates)
    assert len({f["signature"] for f in frames}) == len(frames)  # every event distinct
    first, again = frames[0], frames[len(dialect.templates)]
    assert first["signature"][:-8] == again["signature"][:-8] and first["mint"] == again["mint"]
    assert {k: v for k, v in first.items() if k != "signature"} == {k: v for k, v in again.items() if k != "signature"}


def test_every_client_reads_a_blast_and_pings_are_answered(hose: Firehose) -> None:
    ws = _connect(hose, "openpump")
    try:
        assert json.loads(ws.recv())["type"] == "connected"  # the captured preamble
        hose.wait_streaming("openpump", 1, timeout=10.0)
        ws.ping(b"hi")
        ws.settimeout(10.0)
        opcode, payload = ws.recv_data(control_frame=True)
        assert (opcode, payload) == (websocket.ABNF.OPCODE_PONG, b"hi")
        ws.send('{"type":"ping"}')  # OpenPump's application ping: the simulator's answer, captured
        assert json.loads(ws.recv())["type"] == "pong"
        reply: dict[str, Any] = {}
        sender = threading.Thread(target=lambda: reply.update(hose.blast("openpump", 500, timeout=10.0)))
        sender.start()
        received = [json.loads(ws.recv()) for _ in range(500)]
        sender.join(10.0)
        assert reply["frames"] == 500 and reply["bytes"] > 0 and reply["send_rate"] > 0
        assert len({r["signature"] for r in received}) == 500
    finally:
        ws.close()
    hose.wait_idle(timeout=10.0)


def test_a_json_rpc_hello_gets_the_answer_with_its_id(hose: Firehose) -> None:
    ws = _connect(hose, "solana")
    try:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 77, "method": "logsSubscribe", "params": []}))
        answer = json.loads(ws.recv())
        assert answer["id"] == 77 and isinstance(answer["result"], int)
        hose.wait_streaming("solana", 1, timeout=10.0)
    finally:
        ws.close()


def test_a_plain_get_is_refused(hose: Firehose) -> None:
    port = int(hose.url("openpump").split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10.0) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 404")


def test_frame_lengths() -> None:
    for size in (0, 125, 126, 65_535, 65_536):
        data = frame(b"x" * size)
        assert data[0] == 0x81 and len(data) - size in (2, 4, 10)
    dialect = Dialect("x", [], [], [Template(b'{"a":"', b'"}')], hello_expected=False)
    assert build(dialect, 2).frames == 2
