"""The PumpPortal simulator server against free-sources.md section 2, over real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from pphelpers import PPSim, captured, pp_server, pp_url
from simulator.simhelpers import assert_silent, expect_close, recv_json, recv_until
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pumpsync.simulator.market import Launch, Trade
from pumpsync.simulator.plans import FUNDED_KEY, UNFUNDED_KEY
from pumpsync.simulator.pumpportal import ACK_KEYS, ACK_MIGRATIONS, ACK_NEW_TOKENS, UNFUNDED_MESSAGE

CREATE, _PUMP_CREATE_2, BONK, BUY, MIGRATE = [f for f in captured() if "txType" in f]


def pp_connect(url: str, key: str | None = None) -> ClientConnection:
    return connect(url + (f"?api-key={key}" if key else ""), open_timeout=5, close_timeout=0.3)


def send(ws: ClientConnection, method: str, keys: list[str] | None = None) -> None:
    ws.send(json.dumps({"method": method} if keys is None else {"method": method, "keys": keys}))


def next_of(ws: ClientConnection, tx: str) -> dict[str, Any]:
    msg: dict[str, Any] = recv_until(ws, lambda m: m.get("txType") == tx)
    return msg


def test_acknowledgements_are_the_captured_texts(pp_sim: PPSim) -> None:
    sim = pp_sim()
    with pp_connect(pp_url(sim), FUNDED_KEY) as ws:
        send(ws, "subscribeNewToken")
        assert recv_json(ws) == {"message": ACK_NEW_TOKENS}
        send(ws, "subscribeMigration")
        assert recv_json(ws) == {"message": ACK_MIGRATIONS}
        send(ws, "subscribeTokenTrade", ["8yZ1rj5nHbUFuCbnoowE6rHLZYiuTe1tbxEskgzUpump"])
        assert recv_json(ws) == {"message": ACK_KEYS}
        send(ws, "unsubscribeTokenTrade", ["8yZ1rj5nHbUFuCbnoowE6rHLZYiuTe1tbxEskgzUpump"])
        assert_silent(ws)  # no unsubscribe acknowledgement is documented
    control = [f["message"] for f in captured() if "message" in f]
    assert control == [ACK_NEW_TOKENS, ACK_MIGRATIONS, ACK_KEYS, UNFUNDED_MESSAGE]


def test_frames_have_the_captured_shapes_and_no_time(pp_sim: PPSim) -> None:
    sim = pp_sim(bonk_share=1.0)
    with pp_connect(pp_url(sim), FUNDED_KEY) as ws:
        send(ws, "subscribeNewToken")
        send(ws, "subscribeMigration")
        recv_json(ws), recv_json(ws)
        events = sim.emit(1, "launch")
        create = next_of(ws, "create")
        bonk = next_of(ws, "create")
        send(ws, "subscribeTokenTrade", [events[0].mint])
        assert recv_json(ws) == {"message": ACK_KEYS}
        sim.emit(1, "graduation")  # buys the only live token off its curve
        buy = next_of(ws, "buy")
        migrate = next_of(ws, "migrate")
    for frame, model in ((create, CREATE), (bonk, BONK), (buy, BUY), (migrate, MIGRATE)):
        assert list(frame) == list(model), frame  # the same fields in the same order
        for name, value in frame.items():
            assert type(value) in ((int, float) if type(model[name]) in (int, float) else (type(model[name]),)), name
        assert not {"timestamp", "slot", "time", "blockTime"} & set(frame)
    assert (create["pool"], bonk["pool"], buy["pool"], migrate["pool"]) == ("pump", "bonk", "pump", "pump-amm")
    launch = events[0]
    assert isinstance(launch, Launch)
    assert (create["mint"], create["signature"], create["traderPublicKey"]) == (
        launch.mint,
        launch.signature,
        launch.token.creator,
    )
    assert (create["name"], create["symbol"], create["uri"]) == (
        launch.token.name,
        launch.token.symbol,
        launch.token.uri,
    )
    assert migrate["mint"] == launch.mint
    assert create["marketCapSol"] == pytest.approx(create["vSolInBondingCurve"] / create["vTokensInBondingCurve"] * 1e9)


def test_the_creators_first_buy_rides_in_the_create(pp_sim: PPSim) -> None:
    sim = pp_sim()
    with pp_connect(pp_url(sim)) as ws:
        send(ws, "subscribeNewToken")
        recv_json(ws)
        seen: set[str] = set()
        while seen != {"with a first buy", "without"}:
            events = sim.emit(1, "launch")
            frame = next_of(ws, "create")
            if len(events) == 2:
                first = events[1]
                assert isinstance(first, Trade) and first.signature == frame["signature"]
                assert frame["initialBuy"] == first.token_amount and frame["solAmount"] == first.sol_amount
                seen.add("with a first buy")
            else:
                # No buy: the curve is at its start, in whole numbers written as JSON integers.
                assert (frame["initialBuy"], frame["solAmount"], frame["vSolInBondingCurve"]) == (0, 0, 30)
                assert type(frame["vSolInBondingCurve"]) is int and type(frame["vTokensInBondingCurve"]) is int
                seen.add("without")


def test_unfunded_and_keyless_trade_subscriptions_are_acknowledged_then_silent(pp_sim: PPSim) -> None:
    sim = pp_sim()
    for key in (UNFUNDED_KEY, None):
        with pp_connect(pp_url(sim), key) as ws:
            send(ws, "subscribeNewToken")
            assert recv_json(ws) == {"message": ACK_NEW_TOKENS}
            launch = sim.emit(1, "launch")[0]
            next_of(ws, "create")
            send(ws, "subscribeTokenTrade", [launch.mint])
            assert recv_json(ws) == {"message": ACK_KEYS}
            assert recv_json(ws) == {"message": UNFUNDED_MESSAGE}
            send(ws, "subscribeAccountTrade", [launch.token.creator])
            assert recv_json(ws) == {"message": ACK_KEYS}  # said once per connection
            sim.emit(20, "trade")
            sim.emit(1, "launch")
            # Launches keep coming; the trades on the subscribed mint never do.
            assert next_of(ws, "create")["mint"] != launch.mint
            assert_silent(ws)
        sim.wait_for(lambda: not sim.connections("pumpportal"))


def test_funded_trade_subscriptions_stream_by_mint_and_by_wallet(pp_sim: PPSim) -> None:
    sim = pp_sim()
    launch = sim.emit(1, "launch")[0]
    with pp_connect(pp_url(sim), FUNDED_KEY) as ws:
        send(ws, "subscribeTokenTrade", [launch.mint])
        assert recv_json(ws) == {"message": ACK_KEYS}
        trades = [e for e in sim.emit(5, "trade") if isinstance(e, Trade)]
        got = [next_of(ws, t.side) for t in trades]
        assert [g["signature"] for g in got] == [t.signature for t in trades]
        send(ws, "unsubscribeTokenTrade", [launch.mint])
        send(ws, "subscribeAccountTrade", [trades[0].trader])
        assert recv_json(ws) == {"message": ACK_KEYS}
        assert [c.subscriptions[0].filters for c in sim.connections("pumpportal")] == [{"keys": [trades[0].trader]}]
        more = [e for e in sim.emit(60, "trade") if isinstance(e, Trade)]
        mine = [t for t in more if t.trader == trades[0].trader]
        for t in mine:
            assert next_of(ws, t.side)["signature"] == t.signature
        assert_silent(ws)


def test_subscriptions_are_forgotten_on_reconnect(pp_sim: PPSim) -> None:
    sim = pp_sim()
    with pp_connect(pp_url(sim)) as ws:
        send(ws, "subscribeNewToken")
        recv_json(ws)
        assert [s.channel for s in sim.wait_for_connections("pumpportal", 1, subscribed=True)[0].subscriptions] == [
            "new_tokens"
        ]
        sim.drop("pumpportal")
        expect_close(ws)
    sim.wait_for(lambda: not sim.connections("pumpportal"))
    with pp_connect(pp_url(sim)) as ws:
        sim.wait_for_connections("pumpportal", 1)
        assert sim.connections("pumpportal")[0].subscriptions == []
        sim.emit(3, "launch")
        assert_silent(ws)


def test_a_second_concurrent_connection_bans_the_client(pp_sim: PPSim) -> None:
    sim = pp_sim(ban_seconds=600)
    with pp_connect(pp_url(sim)) as first:
        sim.wait_for_connections("pumpportal", 1)
        with pytest.raises(InvalidStatus) as refused:
            pp_connect(pp_url(sim))
        assert refused.value.response.status_code == 429
        assert 590 <= int(refused.value.response.headers["Retry-After"]) <= 600
        # The first connection goes on.
        send(first, "subscribeNewToken")
        assert recv_json(first) == {"message": ACK_NEW_TOKENS}
    sim.wait_for(lambda: not sim.connections("pumpportal"))
    with pytest.raises(InvalidStatus) as banned:  # alone now, but banned for the ban's length
        pp_connect(pp_url(sim))
    assert banned.value.response.status_code == 429
    pp_server(sim).lift_bans()
    with pp_connect(pp_url(sim)):
        sim.wait_for_connections("pumpportal", 1)


def test_one_connection_after_another_is_no_ban(pp_sim: PPSim) -> None:
    sim = pp_sim()
    for _ in range(3):
        with pp_connect(pp_url(sim)):
            sim.wait_for_connections("pumpportal", 1)
        sim.wait_for(lambda: not sim.connections("pumpportal"))
    assert pp_server(sim).bans == {}


def test_the_operators_limits_answer_with_errors(pp_sim: PPSim) -> None:
    sim = pp_sim()
    with pp_connect(pp_url(sim), FUNDED_KEY) as ws:
        send(ws, "subscribeAccountTrade", ["3JQvkiF2GKfca3ggMPRwTHmzvnj6emReuSFwSrBBonp5"] * 5001)
        assert "5000" in recv_json(ws)["errors"]
        ws.send(json.dumps({"action": "subscribe"}))
        assert "errors" in recv_json(ws)
        ws.send("not json")
        assert "errors" in recv_json(ws)
        for _ in range(1000):  # far beyond 200 a second, however slow the machine
            send(ws, "subscribeNewToken")
        answers = [recv_json(ws) for _ in range(1000)]
        assert {"message": ACK_NEW_TOKENS} in answers
        assert any("Rate limit" in a.get("errors", "") for a in answers)


def test_other_launchpads_and_mislabelled_mints_share_the_feed(pp_sim: PPSim) -> None:
    sim = pp_sim(bonk_share=1.0, mislabelled_share=1.0)
    with pp_connect(pp_url(sim)) as ws:
        send(ws, "subscribeNewToken")
        recv_json(ws)
        launch = sim.emit(1, "launch")[0]
        frames = [next_of(ws, "create") for _ in range(3)]
    assert [f["pool"] for f in frames] == ["pump", "bonk", "pump"]
    assert frames[0]["mint"] == launch.mint and frames[2]["mint"] == "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    assert len({f["signature"] for f in frames}) == 3
    assert [kind for kind, _ in pp_server(sim).history] == ["create", "bonk", "mislabelled"]
    assert [f["signature"] for f in sim.history("pumpportal")] == [f["signature"] for f in frames]
    assert sim.history("pumpportal", "bonk") == [frames[1]]


def test_faults_and_blast(pp_sim: PPSim) -> None:
    sim = pp_sim()
    with pp_connect(pp_url(sim)) as ws:
        send(ws, "subscribeNewToken")
        recv_json(ws)
        assert sim.send_malformed("not_json", "pumpportal") == 1
        assert ws.recv(timeout=5) == '{"type": "new_token", this is not JSON'
        sim.send_malformed("missing_fields", "pumpportal")
        broken = recv_json(ws)
        assert broken["txType"] == "create" and "mint" not in broken
        sim.send_malformed("binary", "pumpportal")
        assert isinstance(ws.recv(timeout=5), bytes)
        assert sim.blast(50, "pumpportal") == 50
        blasted = [recv_json(ws) for _ in range(50)]
        assert {f["txType"] for f in blasted} == {"create"} and len({f["signature"] for f in blasted}) == 50
        sim.restart("pumpportal")
        expect_close(ws)


# The example from PumpPortal's documentation, verbatim but for the URL.
DOCUMENTED_EXAMPLE = """
import asyncio
import websockets
import json

async def subscribe():
  uri = "wss://pumpportal.fun/api/data"
  async with websockets.connect(uri) as websocket:

      # Subscribing to token creation events
      payload = {
          "method": "subscribeNewToken",
      }
      await websocket.send(json.dumps(payload))

      async for message in websocket:
          print(json.loads(message))

# Run the subscribe function
asyncio.get_event_loop().run_until_complete(subscribe())
"""


def test_the_documented_python_example_runs_unchanged_but_for_the_url(pp_sim: PPSim) -> None:
    sim = pp_sim()
    script = DOCUMENTED_EXAMPLE.replace("wss://pumpportal.fun/api/data", pp_url(sim))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # print() to a pipe would wait in a buffer
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == repr({"message": ACK_NEW_TOKENS})
        launch = sim.emit(1, "launch")[0]
        printed = proc.stdout.readline()
        assert f"'mint': '{launch.mint}'" in printed and "'txType': 'create'" in printed
    finally:
        proc.kill()
        proc.wait(10)
    sim.wait_for(lambda: not sim.connections("pumpportal"))
