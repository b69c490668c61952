"""OpenPump server against document 000: frames, keys, plans, close codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from simhelpers import (
    OP_CONNECTED,
    OP_NEW_TOKEN,
    OP_PONG,
    OP_STATUS_REPLY,
    OP_TOKEN_ENRICHED,
    OP_TRADE,
    check_schema,
    expect_close,
    op_connect,
    recv_json,
    recv_until,
)

from pumpsync.simulator import Simulator

SimFactory = Callable[..., Simulator]


def test_every_frame_type_matches_the_document(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",), enrich_delay=0.05)
    with op_connect(sim) as ws:
        connected = recv_json(ws)
        check_schema(connected, OP_CONNECTED)
        assert connected["message"] == "Connected to OpenPump real-time stream"
        assert connected["status"]["running"] is True

        sim.emit(30)
        frames: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + 5
        while not {"new_token", "token_enriched", "buy", "sell"} <= set(frames):
            assert time.monotonic() < deadline, f"only saw {sorted(frames)}"
            msg = recv_json(ws)
            frames.setdefault(msg["type"], msg)
        check_schema(frames["new_token"], OP_NEW_TOKEN)
        check_schema(frames["token_enriched"], OP_TOKEN_ENRICHED)
        check_schema(frames["buy"], {**OP_TRADE, "type": ("=", "buy")})
        check_schema(frames["sell"], {**OP_TRADE, "type": ("=", "sell")})
        assert frames["token_enriched"]["image"].startswith("https://ipfs.io/ipfs/")  # type: ignore[union-attr]

        ws.send(json.dumps({"type": "ping"}))
        check_schema(recv_until(ws, lambda m: m["type"] == "pong"), OP_PONG)
        ws.send(json.dumps({"type": "status"}))
        status = recv_until(ws, lambda m: m["type"] == "status")
        check_schema(status, OP_STATUS_REPLY)
        assert status["data"]["processedCount"] >= 30
        assert status["data"]["subscriptionId"] == connected["status"]["subscriptionId"]
        info = sim.connections("openpump")[0]
        assert info.client_pings == 1 and info.key_plan == "enterprise" and info.subscribed


def test_enrichment_follows_new_token_after_the_delay(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",), enrich_delay=0.3)
    with op_connect(sim) as ws:
        recv_json(ws)
        launch = sim.emit(1, "launch")[0]
        new = recv_until(ws, lambda m: m["type"] == "new_token")
        enriched = recv_until(ws, lambda m: m["type"] == "token_enriched")
        # Server-side times: client receive times would depend on the test machine's load.
        assert enriched["timestamp"] - new["timestamp"] >= 290
        assert new["mint"] == enriched["mint"] == launch.mint
        assert new["signature"] == enriched["signature"] == launch.signature
        assert enriched["creator"] == new["creator"]
        assert 0 <= enriched["bondingCurve"]["progress"] <= 100
        assert enriched["bondingCurve"]["marketCap"] == pytest.approx(
            enriched["bondingCurve"]["currentPrice"] * 1e9, rel=1e-3
        )


def test_history_has_every_frame_once_in_order(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",), enrich_delay=0.0)
    with op_connect(sim) as ws:
        recv_json(ws)
        events = sim.emit(50)
        launches = sum(e.kind == "launch" for e in events)
        trades = sum(e.kind == "trade" for e in events)
        sim.wait_for(lambda: len(sim.history("openpump")) == 2 * launches + trades)
        history = sim.history("openpump")
        received = [recv_json(ws) for _ in history]
    assert received == history
    assert len({(f["type"], f["signature"]) for f in history}) == len(history)
    assert [f["type"] for f in sim.history("openpump", "new_token")] == ["new_token"] * launches


@pytest.mark.parametrize("bearer", [False, True])
def test_key_in_query_or_bearer_header(make_sim: SimFactory, bearer: bool) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim, "YOUR_API_KEY", bearer=bearer) as ws:
        assert recv_json(ws)["type"] == "connected"


@pytest.mark.parametrize(("key", "code"), [(None, 1008), ("sim-invalid", 1008), ("sim-free", 4001)])
def test_refused_keys(make_sim: SimFactory, key: str | None, code: int) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim, key) as ws:
        assert expect_close(ws)[0] == code
    assert sim.connections("openpump") == []


def test_pro_plan_allows_two_connections(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim, "sim-pro") as a, op_connect(sim, "sim-pro") as b:
        recv_json(a), recv_json(b)
        with op_connect(sim, "sim-pro") as c:
            code, reason = expect_close(c)
            assert code == 4001 and "plan" in reason.lower()
        with op_connect(sim, "another-key") as d:  # the limit is per key
            assert recv_json(d)["type"] == "connected"
        assert [c.key_plan for c in sim.connections("openpump")][:2] == ["pro", "pro"]


def test_explicit_key_table(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",), keys={"alpha": "pro", "beta": "free"})
    with op_connect(sim, "alpha") as ws:
        assert recv_json(ws)["type"] == "connected"
    with op_connect(sim, "beta") as ws:
        assert expect_close(ws)[0] == 4001
    with op_connect(sim, "YOUR_API_KEY") as ws:
        assert expect_close(ws)[0] == 1008


def test_stop_closes_with_going_away(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    with op_connect(sim) as ws:
        recv_json(ws)
        started = time.monotonic()
        sim.stop()
        assert time.monotonic() - started < 2.0
        assert expect_close(ws)[0] == 1001


def test_document_python_example_runs_unchanged(make_sim: SimFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """The Python example of document 000, verbatim but for the URL."""
    example = """
import asyncio
import websockets
import json

async def stream_tokens():
    uri = "ws://api.openpump.io/v1/stream?api_key=YOUR_API_KEY"

    async with websockets.connect(uri) as websocket:
        print("Connected to OpenPump stream")

        async for message in websocket:
            event = json.loads(message)

            if event["type"] == "new_token":
                print(f"NEW TOKEN: {event['mint']}")
                # Execute trading logic here

            elif event["type"] == "token_enriched":
                print(f"Token: {event.get('name', 'Unknown')}")
                if "bondingCurve" in event:
                    print(f"Progress: {event['bondingCurve']['progress']}%")

asyncio.run(stream_tokens())
"""
    sim = make_sim(providers=("openpump",), enrich_delay=0.0)
    source = example.replace("ws://api.openpump.io/v1/stream", sim.url("openpump"))
    # The example runs until the server closes; bound it with a deadline.
    source = source.replace("asyncio.run(stream_tokens())", "asyncio.run(asyncio.wait_for(stream_tokens(), 10))")
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(source, "openpump_example", "exec"), {"__name__": "__example__"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    sim.wait_for_connections("openpump", 1, subscribed=True)
    launches = [e for e in sim.emit(3, "launch") if e.kind == "launch"]
    sim.wait_for(lambda: len(sim.history("openpump", "token_enriched")) == 3)
    sim.close(1000)  # the example's `async for` ends on a normal closure
    thread.join(10)
    assert not thread.is_alive() and not errors
    out = capsys.readouterr().out
    assert "Connected to OpenPump stream" in out
    for launch in launches:
        assert f"NEW TOKEN: {launch.mint}" in out
        assert f"Token: {launch.token.name}" in out
    assert out.count("Progress: ") == 3
