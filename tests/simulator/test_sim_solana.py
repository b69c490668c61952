"""The simulated Solana node, checked from the documents only (free-sources.md section 1).

Clients here are plain ``websockets`` / ``requests`` scripts sending the documented JSON, and
Program data lines are decoded by the tiny ``struct`` decoder below, written from the
reference's table and independent of both the simulator's encoder and pumpsync's decoder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import struct
from collections.abc import Callable
from typing import Any

import pytest
import requests
from simhelpers import DIRECT, assert_silent, expect_close, recv_json
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pumpsync.simulator import Graduation, Launch, Simulator, Trade
from pumpsync.simulator._solana_encode import b58decode, encode_event

SimFactory = Callable[..., Simulator]
PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
# Verbatim from the reference.
SUBSCRIBE = '{"jsonrpc":"2.0","id":1,"method":"logsSubscribe","params":[{"mentions":["6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"]},{"commitment":"processed"}]}'  # noqa: E501
CPI_TAG = bytes.fromhex("e445a52e51cb9a1d")
CAPTURED_CREATE = "G3KpTd7rY3YOAAAAVGhlIEFzcyBTdGF0dWUDAAAAVEFTQAAAAGh0dHBzOi8vbWV0YS51eGVudG8uaW8vZGF0YS83MTRiMGJlYy05MGNiLTRjYmItOTU5OC1iN2JjYmNkM2JkMDarDUVGkFAyRzCsYxVgJvZmb/09juzXRcgA2DNBRiFAnyiNIIamJQRxRzVeoOuuRwVPIoHsLN6K2zqPUbEf9bssRef0SuNtc2Y43Xotj2C0NWe2RcC/3hbdIrULc6ozrN5F5/RK421zZjjdei2PYLQ1Z7ZFwL/eFt0itQtzqjOs3gLwaWoAAAAAABDYR+PPAwAArCP8BgAAAAB4xftR0QIAAIDGpH6NAwAG3fbh7nWP3hhCXbzkbM3athr8TYO5DSf+vfko2KGL/AABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAArCP8BgAAAA=="  # noqa: E501
CAPTURED_TRADE = "vdt/007mYe6rDUVGkFAyRzCsYxVgJvZmb/09juzXRcgA2DNBRiFAnxI6m7AAAAAAXdZ/YrhXAAABRef0SuNtc2Y43Xotj2C0NWe2RcC/3hbdIrULc6ozrN4C8GlqAAAAABLmvqwHAAAAozlY5Sp4AwASOpuwAAAAAKOhRZmZeQIASsL40N1cvJfjKJwZfLUGKlTz2Va5zm5RFfllZ6pcs+ZfAAAAAAAAALWBrQEAAAAARef0SuNtc2Y43Xotj2C0NWe2RcC/3hbdIrULc6ozrN4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEAAAAGJ1eV9leGFjdF9zb2xfaW4AHgAAAAAAAAA5oocAAAAAAIgTAAAAAAAA2sDWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAASOpuwAAAAABLmvqwHAAAAEjqbsAAAAAA="  # noqa: E501

# -- an independent decoder, from the reference's table ----------------------------------------

TABLE = {
    "CreateEvent": "name:s symbol:s uri:s mint:k bonding_curve:k user:k creator:k timestamp:q "
    "virtual_token_reserves:Q virtual_sol_reserves:Q real_token_reserves:Q token_total_supply:Q token_program:k "
    "is_mayhem_mode:? is_cashback_enabled:? quote_mint:k virtual_quote_reserves:Q "
    "creator_fee_bps:Q is_holder_reward:? depth:B",
    "TradeEvent": "mint:k sol_amount:Q token_amount:Q is_buy:? user:k timestamp:q virtual_sol_reserves:Q "
    "virtual_token_reserves:Q real_sol_reserves:Q real_token_reserves:Q fee_recipient:k fee_basis_points:Q fee:Q "
    "creator:k creator_fee_basis_points:Q creator_fee:Q track_volume:? total_unclaimed_tokens:Q "
    "total_claimed_tokens:Q current_sol_volume:Q last_update_timestamp:q ix_name:s mayhem_mode:? "
    "cashback_fee_basis_points:Q cashback:Q buyback_fee_basis_points:Q buyback_fee:Q shareholders:v quote_mint:k "
    "quote_amount:Q virtual_quote_reserves:Q real_quote_reserves:Q holder_rewards_bps:Q holder_rewards:Q "
    "creator_fee_unclaimed:Q",
    # shared/reference/onchain-2026.md section 1 (offsets as listed there)
    "PostCompleteBuyEvent": "user:k mint:k bonding_curve:k quote_mint:k timestamp:q base_out:Q quote_in:Q "
    "fee_basis_points:Q fee:Q creator_fee_basis_points:Q creator_fee:Q buyback_fee:Q pool_base_before:Q "
    "pool_quote_before:Q pool_base_after:Q pool_quote_after:Q",
    "SweepBondingCurveFeeEvent": "timestamp:q mint:k bonding_curve:k quote_mint:k recipient:k amount:Q bucket:B",
    "SweepPoolFeeEvent": "timestamp:q pool:k base_mint:k quote_mint:k recipient:k payer:k amount:Q bucket:B",
    "CompleteEvent": "user:k mint:k bonding_curve:k timestamp:q quote_mint:k",
    "CompletePumpAmmMigrationEvent": "user:k mint:k mint_amount:Q sol_amount:Q pool_migration_fee:Q "
    "bonding_curve:k timestamp:q pool:k quote_mint:k",
}
DISCRIMINATORS = {
    "1b72a94ddeeb6376": "CreateEvent",
    "bddb7fd34ee661ee": "TradeEvent",
    "5f72619cd42e9808": "CompleteEvent",
    "bde95db95c94ea94": "CompletePumpAmmMigrationEvent",
    "6fb06d8b316cd5fb": "PostCompleteBuyEvent",
    "742b4dbd117a482b": "SweepBondingCurveFeeEvent",
    "82a42461e48287a5": "SweepPoolFeeEvent",
}
SIZES = {"PostCompleteBuyEvent": 224, "SweepBondingCurveFeeEvent": 145, "SweepPoolFeeEvent": 177}
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58(data: bytes) -> str:
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def decode(data: bytes) -> tuple[str | None, dict[str, Any], int]:
    """(event name or None if unknown, fields read, bytes consumed); stops where the data ends."""
    name = DISCRIMINATORS.get(data[:8].hex())
    fields: dict[str, Any] = {}
    at = 8
    for spec in TABLE.get(name or "", "").split():
        field, code = spec.split(":")
        if at >= len(data):
            break
        if code == "k":
            fields[field], at = b58(data[at : at + 32]), at + 32
        elif code == "s":
            (size,) = struct.unpack_from("<I", data, at)
            fields[field], at = data[at + 4 : at + 4 + size].decode(), at + 4 + size
        elif code == "v":
            (count,) = struct.unpack_from("<I", data, at)
            fields[field], at = count, at + 4 + 34 * count
        else:
            fields[field] = struct.unpack_from("<" + code, data, at)[0]
            at += struct.calcsize(code)
    return name, fields, at


def program_data(logs: list[str]) -> list[bytes]:
    return [base64.b64decode(line[len("Program data: ") :]) for line in logs if line.startswith("Program data: ")]


# -- client helpers -----------------------------------------------------------------------------


def subscribe(sim: Simulator, path: str = "", **kwargs: Any) -> tuple[ClientConnection, int]:
    ws = connect(sim.url("solana") + path, open_timeout=5, close_timeout=0.3, **DIRECT, **kwargs)
    ws.send(SUBSCRIBE)
    reply = recv_json(ws)
    assert set(reply) == {"jsonrpc", "result", "id"} and reply["id"] == 1 and isinstance(reply["result"], int)
    return ws, reply["result"]


def notifications(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        msg = recv_json(ws)
        assert msg["jsonrpc"] == "2.0" and msg["method"] == "logsNotification"
        assert set(msg["params"]["result"]["value"]) == {"signature", "err", "logs"}
        out.append(msg["params"])
    return out


def rpc(sim: Simulator, method: str, *params: Any, path: str = "", expect: int = 200) -> Any:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": list(params)}
    response = requests.post(sim.rest_url("solana") + "/" + path, json=body, timeout=10)
    assert response.status_code == expect, response.text
    reply = response.json()
    assert reply["jsonrpc"] == "2.0"
    return reply


def get_tx(sim: Simulator, signature: str) -> dict[str, Any]:
    config = {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"}
    result: dict[str, Any] = rpc(sim, "getTransaction", signature, config)["result"]
    return result


def inner_events(tx: dict[str, Any]) -> list[bytes]:
    keys = tx["transaction"]["message"]["accountKeys"]
    out = []
    for group in tx["meta"]["innerInstructions"]:
        for ix in group["instructions"]:
            data = b58decode(ix["data"])
            if keys[ix["programIdIndex"]] == PUMP and data[:8] == CPI_TAG:
                out.append(data[8:])
    return out


@pytest.fixture
def sol(make_sim: SimFactory) -> Simulator:
    return make_sim(providers=("solana",))


# -- the encoder against the real captured lines --------------------------------------------------


@pytest.mark.parametrize("line", [CAPTURED_CREATE, CAPTURED_TRADE])
def test_encoder_reproduces_the_captured_mainnet_lines(line: str) -> None:
    data = base64.b64decode(line)
    name, fields, used = decode(data)
    assert name is not None and used == len(data)
    if name == "TradeEvent":
        assert fields["shareholders"] == 0
        fields["shareholders"] = ()
    assert encode_event(name, fields, "may2026") == data  # the layout of their day (May 2026)
    for hex_disc, event in DISCRIMINATORS.items():
        assert hashlib.sha256(f"event:{event}".encode()).digest()[:8].hex() == hex_disc


# -- streaming --------------------------------------------------------------------------------


def test_document_client_receives_pump_transactions(sol: Simulator) -> None:
    ws, sub = subscribe(sol)
    with ws:
        sol.wait_for_connections("solana", 1, subscribed=True)
        events = sol.emit(1, "launch") + sol.emit(3, "trade")
        launch = next(e for e in events if isinstance(e, Launch))
        txs = {e.signature for e in events}
        got = notifications(ws, len(txs))
    assert [n["subscription"] for n in got] == [sub] * len(txs)
    by_sig = {n["result"]["value"]["signature"]: n for n in got}
    assert set(by_sig) == txs
    for sig in txs:
        assert len(b58decode(sig)) == 64
    first = by_sig[launch.signature]
    assert first["result"]["context"]["slot"] == launch.slot and first["result"]["value"]["err"] is None
    logs = first["result"]["value"]["logs"]
    assert logs[0].startswith("Program ComputeBudget111111111111111111111111111111 invoke [1]")
    assert f"Program {PUMP} invoke [1]" in logs and logs[-1] == f"Program {PUMP} success"
    assert any(line in logs for line in ("Program log: Instruction: CreateV2", "Program log: Instruction: Create"))
    assert any(line.startswith(f"Program {PUMP} consumed ") and "compute units" in line for line in logs)
    name, create, used = decode(program_data(logs)[0])
    assert name == "CreateEvent" and used == len(program_data(logs)[0])
    token = launch.token
    assert (create["name"], create["symbol"], create["uri"]) == (token.name, token.symbol, token.uri)
    assert (create["mint"], create["creator"], create["user"]) == (token.mint, token.creator, token.creator)
    assert create["timestamp"] == launch.timestamp // 1000
    assert (create["virtual_token_reserves"], create["virtual_sol_reserves"]) == (1_073_000_000_000_000, 30 * 10**9)
    assert create["quote_mint"] == "11111111111111111111111111111111"
    for event in events:
        if not isinstance(event, Trade):
            continue
        datas = program_data(by_sig[event.signature]["result"]["value"]["logs"])
        name, trade, used = decode(datas[-1])
        assert name == "TradeEvent" and used == len(datas[-1])
        assert (trade["mint"], trade["user"], trade["is_buy"]) == (event.mint, event.trader, event.side == "buy")
        assert (trade["sol_amount"], trade["token_amount"]) == (event.sol_lamports, event.token_raw)
        assert (trade["virtual_sol_reserves"], trade["real_token_reserves"]) == (
            event.curve.virtual_sol,
            event.curve.real_tokens,
        )
        assert trade["timestamp"] == event.timestamp // 1000
        assert trade["ix_name"] in ("buy", "buy_exact_sol_in", "sell")
        assert (trade["ix_name"] == "sell") == (event.side == "sell")
        if event.mint == launch.mint:
            assert trade["creator"] == token.creator


def test_graduation_complete_in_the_buy_then_a_migration_transaction(sol: Simulator) -> None:
    ws, _ = subscribe(sol)
    with ws:
        events = sol.emit(1, "graduation")
        grad = next(e for e in events if isinstance(e, Graduation))
        buy = events[events.index(grad) - 1]
        assert isinstance(buy, Trade)
        got = notifications(ws, len({e.signature for e in events}))
    by_sig = {n["result"]["value"]["signature"]: n["result"]["value"]["logs"] for n in got}
    assert list(by_sig)[-2:] == [buy.signature, grad.signature]  # the migration comes later
    datas = program_data(by_sig[buy.signature])
    names = [decode(d)[0] for d in datas]
    complete = decode(datas[1])[1]
    assert (complete["mint"], complete["user"]) == (grad.mint, buy.trader)
    if buy.side == "buy":  # buy_v3 (2026-10-08): the curve's part, the graduation, the pool's part
        assert names[:3] == ["TradeEvent", "CompleteEvent", "PostCompleteBuyEvent"]
        (_, trade, _), (_, post, used) = decode(datas[0]), decode(datas[2])
        assert used == len(datas[2]) == 8 + SIZES["PostCompleteBuyEvent"] and trade["ix_name"] == "buy_v3"
        assert (post["user"], post["mint"]) == (buy.trader, buy.mint)
        assert trade["sol_amount"] + post["quote_in"] == buy.sol_lamports
        assert trade["token_amount"] + post["base_out"] == buy.token_raw
    else:
        assert names[:2] == ["TradeEvent", "CompleteEvent"]
    migrate_logs = by_sig[grad.signature]
    assert "Program log: Instruction: Migrate" in migrate_logs
    name, migration, _ = decode(program_data(migrate_logs)[0])
    assert name == "CompletePumpAmmMigrationEvent" and migration["mint"] == grad.mint
    assert [r["signature"] for r in sol.history("solana", "graduations")] == [buy.signature, grad.signature]


def test_fee_sweeps_and_holder_reward_coins(sol: Simulator) -> None:
    """Sweeps (fee payouts) ride along one transaction in five, as their own instruction; one coin in
    six is a holder-reward coin (a pump.fun address as ``creator``, the developer as ``user``)."""
    ws, _ = subscribe(sol)
    with ws:
        events = sol.emit(80)
        got = notifications(
            ws, len({e.signature for e in events if not (isinstance(e, Trade) and e.venue == "pumpswap")})
        )
    sweeps, creates = [], []
    for n in got:
        for data in program_data(n["result"]["value"]["logs"]):
            name, fields, used = decode(data)
            if name in SIZES:
                assert used == len(data) == 8 + SIZES[name]
            if name == "SweepBondingCurveFeeEvent":
                sweeps.append(fields)
            elif name == "CreateEvent":
                creates.append(fields)
    assert sweeps and all(f["bucket"] in (0, 1) and f["amount"] > 0 for f in sweeps)
    launches = {e.token.mint: e.token for e in events if isinstance(e, Launch)}
    rewarded = [f for f in creates if f["is_holder_reward"]]
    assert rewarded and all(f["user"] == launches[f["mint"]].creator != f["creator"] for f in rewarded)
    assert all(f["creator"] == f["user"] for f in creates if not f["is_holder_reward"])


# -- history over HTTP ----------------------------------------------------------------------


def test_history_serves_exactly_what_was_streamed(sol: Simulator) -> None:
    ws, _ = subscribe(sol)
    with ws:
        events = sol.emit(12) + sol.emit(1, "graduation")
        streamed = [n["result"] for n in notifications(ws, len({e.signature for e in events}))]
    newest_first = rpc(sol, "getSignaturesForAddress", PUMP)["result"]
    assert [i["signature"] for i in newest_first] == [s["value"]["signature"] for s in reversed(streamed)]
    item = newest_first[0]
    assert set(item) == {"signature", "slot", "err", "memo", "blockTime", "confirmationStatus"}
    assert item["slot"] == streamed[-1]["context"]["slot"] and isinstance(item["blockTime"], int)
    for result in streamed:
        tx = get_tx(sol, result["value"]["signature"])
        assert tx["slot"] == result["context"]["slot"]
        assert tx["meta"]["err"] is None and tx["meta"]["logMessages"] == result["value"]["logs"]
        assert tx["transaction"]["signatures"] == [result["value"]["signature"]]
        assert inner_events(tx) == program_data(result["value"]["logs"])
    assert rpc(sol, "getSignaturesForAddress", "11111111111111111111111111111111")["result"] == []


def test_signature_paging_until_before_limit(sol: Simulator) -> None:
    sol.emit(30, "trade")
    every = [i["signature"] for i in rpc(sol, "getSignaturesForAddress", PUMP)["result"]]
    assert len(every) >= 30
    pages: list[str] = []
    before = None
    while True:
        config: dict[str, Any] = {"limit": 7, "until": every[-3], **({"before": before} if before else {})}
        page = [i["signature"] for i in rpc(sol, "getSignaturesForAddress", PUMP, config)["result"]]
        pages += page
        if len(page) < 7:
            break
        before = page[-1]
    assert pages == every[:-3]  # until is exclusive
    limited = rpc(sol, "getSignaturesForAddress", PUMP, {"limit": 1001})
    assert limited["error"]["code"] == -32602


def test_http_json_rpc_errors_and_batches(sol: Simulator) -> None:
    sig = sol.emit(1, "trade")[-1].signature
    assert rpc(sol, "getTransaction", sig)["error"]["code"] == -32015  # no maxSupportedTransactionVersion
    processed = rpc(sol, "getTransaction", sig, {"maxSupportedTransactionVersion": 0, "commitment": "processed"})
    assert processed["error"]["code"] == -32602
    assert rpc(sol, "getTransaction", "notasignature", {"maxSupportedTransactionVersion": 0})["error"]["code"] == -32602
    missing = "5" * 87
    assert len(b58decode(missing)) == 64
    assert rpc(sol, "getTransaction", missing, {"maxSupportedTransactionVersion": 0})["result"] is None
    assert rpc(sol, "sendTransaction", "x")["error"] == {"code": -32601, "message": "Method not found"}
    assert rpc(sol, "getSlot")["result"] >= 309_000_000
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        {"jsonrpc": "2.0", "id": 2, "method": "getSignaturesForAddress", "params": [PUMP, {"limit": 1}]},
    ]
    replies = requests.post(sol.rest_url("solana"), json=batch, timeout=5).json()
    assert [r["id"] for r in replies] == [1, 2] and replies[0]["result"] == "ok"
    bad = requests.post(sol.rest_url("solana"), data=b"{not json", timeout=5).json()
    assert bad["error"]["code"] == -32700
    health = requests.get(sol.rest_url("solana") + "/health", timeout=5)
    assert (health.status_code, health.text) == (200, "ok")
    assert requests.get(sol.rest_url("solana"), timeout=5).status_code == 405


# -- WebSocket JSON-RPC ---------------------------------------------------------------------


def test_ws_errors_and_unsubscribe(sol: Simulator) -> None:
    ws, sub = subscribe(sol)
    with ws:
        ws.send("{nope")
        assert recv_json(ws)["error"]["code"] == -32700
        ws.send(json.dumps({"id": 3, "method": "logsSubscribe"}))
        assert recv_json(ws) == {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request"}, "id": 3}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "getSlot"}))
        assert recv_json(ws)["error"] == {"code": -32601, "message": "Method not found"}
        two = {"mentions": [PUMP, "11111111111111111111111111111111"]}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "logsSubscribe", "params": [two]}))
        assert recv_json(ws)["error"]["code"] == -32602
        bad = [{"mentions": [PUMP]}, {"commitment": "fast"}]
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "logsSubscribe", "params": bad}))
        assert recv_json(ws)["error"]["code"] == -32602
        assert sol.connections("solana")[0].subscriptions[0].filters["commitment"] == "processed"
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "logsUnsubscribe", "params": [sub]}))
        assert recv_json(ws) == {"jsonrpc": "2.0", "result": True, "id": 8}
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "logsUnsubscribe", "params": [sub]}))
        assert recv_json(ws)["error"]["code"] == -32602
        sol.emit(2)
        assert_silent(ws)
    assert len(sol.history("solana")) >= 2  # streamed (to nobody) and kept for history


# -- keys -------------------------------------------------------------------------------------


def test_keys_path_query_and_designated(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("solana",))
    for path in ("sim-invalid", "?api-key=sim-invalid"):
        with pytest.raises(InvalidStatus) as info:
            connect(sim.url("solana") + path, open_timeout=5)
        assert info.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as info:
        connect(sim.url("solana") + "?api-key=sim-ratelimited", open_timeout=5)
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "1"
    assert rpc(sim, "getSlot", path="sim-invalid", expect=401)["error"]["code"] == -32401
    assert rpc(sim, "getSlot", path="?api-key=sim-ratelimited", expect=429)["error"]["code"] == 429
    with connect(sim.url("solana") + "sim-free", open_timeout=5, close_timeout=0.3) as ws:
        ws.send(SUBSCRIBE)
        refused = recv_json(ws)
        assert refused["id"] == 1 and refused["error"]["code"] == -32601 and "plan" in refused["error"]["message"]
    ws, _ = subscribe(sim, "any-key-works")
    ws.close()
    keyed = make_sim(providers=("solana",), keys={"good-key": "pro"})
    with pytest.raises(InvalidStatus):
        connect(keyed.url("solana"), open_timeout=5)
    ws, _ = subscribe(keyed, "?api-key=good-key")
    ws.close()
    assert rpc(keyed, "getSlot", path="good-key")["result"] > 0


# -- faults -------------------------------------------------------------------------------------


def test_failed_unknown_and_undecodable_transactions(sol: Simulator) -> None:
    ws, _ = subscribe(sol)
    with ws:
        sol.emit(1, "launch")
        first = notifications(ws, 1)[0]["result"]["value"]["signature"]
        failed = sol.solana_inject("failed")
        unknown = sol.solana_inject("unknown_event")
        garbage = sol.solana_inject("undecodable")
        got = [n["result"]["value"] for n in notifications(ws, 3)]
    assert [v["signature"] for v in got] == failed + unknown + garbage
    bad = got[0]
    assert bad["err"] == {"InstructionError": [3, {"Custom": 1}]}
    assert decode(program_data(bad["logs"])[0])[0] == "TradeEvent"  # still there: a client must skip it
    assert "failed: custom program error: 0x1" in bad["logs"][-1]
    assert [decode(d)[0] for d in program_data(got[1]["logs"])] == [None]
    assert "Program data: !!not*base64!!" in got[2]["logs"]
    items = rpc(sol, "getSignaturesForAddress", PUMP)["result"]
    assert [i["signature"] for i in items][:4] == [*garbage, *unknown, *failed, first]
    assert items[2]["err"] == bad["err"] and get_tx(sol, failed[0])["meta"]["status"] == {"Err": bad["err"]}


def test_truncated_logs_keep_events_in_inner_instructions(sol: Simulator) -> None:
    ws, _ = subscribe(sol)
    with ws:
        sol.solana_next("truncated")
        events = sol.emit(1, "launch")
        value = notifications(ws, 1)[0]["result"]["value"]
        sol.emit(1, "trade")
        normal = notifications(ws, 1)[0]["result"]["value"]
    assert value["signature"] == events[0].signature and value["logs"][-1] == "Log truncated"
    assert program_data(value["logs"]) == [] and sum(map(len, value["logs"])) <= 10_000 + len("Log truncated")
    tx = get_tx(sol, value["signature"])
    assert tx["meta"]["logMessages"] == value["logs"]
    names = [decode(e)[0] for e in inner_events(tx)]
    assert names[0] == "CreateEvent" and decode(inner_events(tx)[0])[1]["mint"] == events[0].mint
    assert program_data(normal["logs"])  # only the next transaction was cut


def test_layouts_extended_and_legacy(sol: Simulator) -> None:
    ws, _ = subscribe(sol)
    with ws:
        sol.emit(1, "launch")
        notifications(ws, 1)
        sol.emit(1, "trade")
        current = program_data(notifications(ws, 1)[0]["result"]["value"]["logs"])[-1]
        sol.solana_layout("extended")
        trade = sol.emit(1, "trade")[-1]
        extended = program_data(notifications(ws, 1)[0]["result"]["value"]["logs"])[-1]
        sol.solana_layout("legacy")
        sol.emit(1, "trade")
        legacy = program_data(notifications(ws, 1)[0]["result"]["value"]["logs"])[-1]
        sol.solana_layout("current")
    assert decode(current)[2] == len(current)
    name, fields, used = decode(extended)
    assert name == "TradeEvent" and len(extended) == used + 16  # two u64 appended
    assert fields["sol_amount"] == trade.sol_lamports
    name, fields, used = decode(legacy)
    assert name == "TradeEvent" and used == len(legacy) and list(fields)[-1] == "real_token_reserves"
    with pytest.raises(ValueError):
        sol.solana_layout("v9")  # type: ignore[arg-type]


def test_oversized_frames_need_a_larger_limit(sol: Simulator) -> None:
    big_ws, _ = subscribe(sol, max_size=None)
    small_ws, _ = subscribe(sol)  # websockets' default: 1 MiB
    with big_ws, small_ws:
        sol.solana_next("oversized", size=3 * 2**20 // 2)
        launch = sol.emit(1, "launch")[0]
        raw = big_ws.recv(timeout=10)
        assert isinstance(raw, str) and len(raw) > 2**20
        value = json.loads(raw)["params"]["result"]["value"]
        assert value["signature"] == launch.signature and decode(program_data(value["logs"])[0])[0] == "CreateEvent"
        with pytest.raises(ConnectionClosed) as closed:
            small_ws.recv(timeout=10)
        assert closed.value.sent is not None and closed.value.sent.code == 1009  # message too big
    assert get_tx(sol, launch.signature)["meta"]["logMessages"] == value["logs"]


def test_history_rate_limit_and_mute_subscribe(sol: Simulator) -> None:
    sol.emit(2)
    sol.rest_fail_next(2, retry_after=0.5, provider="solana")
    assert rpc(sol, "getSlot")["result"] > 0  # only history calls are limited
    limited = rpc(sol, "getSignaturesForAddress", PUMP, expect=429)
    assert limited["error"]["code"] == 429
    response = requests.post(
        sol.rest_url("solana"),
        json={"jsonrpc": "2.0", "id": 1, "method": "getTransaction", "params": ["1" * 64, {}]},
        timeout=5,
    )
    assert response.status_code == 429 and response.headers["Retry-After"] == "0.5"
    assert rpc(sol, "getSignaturesForAddress", PUMP)["result"]
    sol.solana_mute_subscribe()
    with connect(sol.url("solana"), open_timeout=5, close_timeout=0.3) as ws:
        ws.send(SUBSCRIBE)
        sol.wait_for(lambda: sol.solana_subscribe_requests() == 1)
        sol.emit(2)
        assert_silent(ws)  # no reply, no notifications
    sol.solana_mute_subscribe(False)
    sol.solana_subscribe_errors(1, -32005, "Node is behind by 42 slots")
    with connect(sol.url("solana"), open_timeout=5, close_timeout=0.3) as ws:
        ws.send(SUBSCRIBE)
        error = {"code": -32005, "message": "Node is behind by 42 slots"}
        assert recv_json(ws) == {"jsonrpc": "2.0", "error": error, "id": 1}
        ws.send(SUBSCRIBE)
        assert isinstance(recv_json(ws)["result"], int)


def test_connection_faults_pings_and_malformed(sol: Simulator) -> None:
    ws, _ = subscribe(sol, max_size=None)
    with ws:
        assert ws.ping().wait(5)
        sol.ignore_pings(True, provider="solana")
        assert not ws.ping().wait(0.3)
        sol.ignore_pings(False, provider="solana")
        sol.send_malformed("unknown_type", provider="solana")
        assert recv_json(ws)["method"] == "simUnknownNotification"
        sol.send_malformed("missing_fields", provider="solana")
        assert "signature" not in recv_json(ws)["params"]["result"]["value"]
        sol.send_malformed("oversized", provider="solana", size=2 * 2**20 + 3)
        assert len(ws.recv(timeout=10)) == 2 * 2**20 + 3
        sol.send_malformed("binary", provider="solana")
        assert isinstance(ws.recv(timeout=5), bytes)
        assert sol.close(4000, "bye", provider="solana") == 1
        assert expect_close(ws) == (4000, "bye")
    assert sol.history("solana") == []
    port = sol.port("solana")
    sol.emit(3)
    sol.restart("solana", downtime=0.1)
    assert sol.port("solana") == port and len(rpc(sol, "getSignaturesForAddress", PUMP)["result"]) >= 3
    ws, _ = subscribe(sol)
    with ws:
        assert sol.drop("solana") == 1
        assert expect_close(ws) == (None, "")


def test_blast_solana_frames(sol: Simulator) -> None:
    ws, sub = subscribe(sol)
    with ws:
        assert sol.blast(300, "solana") == 300
        frames = [recv_json(ws) for _ in range(300)]
    assert len({f["params"]["result"]["value"]["signature"] for f in frames}) == 300
    assert all(isinstance(f["simSentNs"], int) and f["params"]["subscription"] == sub for f in frames)
    for frame in frames[:64]:
        assert len(b58decode(frame["params"]["result"]["value"]["signature"])) == 64
        data = program_data(frame["params"]["result"]["value"]["logs"])[0]  # (a fee sweep may follow)
        name, fields, used = decode(data)
        assert name == "TradeEvent" and fields["sol_amount"] > 0 and used == len(data)
    assert sol.history("solana") == []


def test_idle_sockets_are_closed_unless_the_client_pings(sol: Simulator) -> None:
    sol.solana_idle_timeout(0.5)
    silent, _ = subscribe(sol)
    pinging, _ = subscribe(sol)
    with silent, pinging:
        closed = []
        for _ in range(40):  # pings every 0.05 s until the silent one is gone
            assert pinging.ping().wait(5)
            try:
                silent.recv(timeout=0.05)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                closed.append(exc.rcvd.code if exc.rcvd else None)
                break
        assert closed == [1001]
        sol.wait_for(lambda: len(sol.connections("solana")) == 1)
        assert pinging.ping().wait(5)  # the pinging client is still there
    sol.solana_idle_timeout(None)


# Key sets of a real getTransaction answer (chainstacklabs/pumpfun-bonkfun-bot,
# learning-examples/raw_create_v2_with_fee_bps_from_gettransaction.json).
REAL_TX_KEYS = {"transaction", "meta", "version", "slot", "transactionIndex", "blockTime"}
REAL_META_KEYS = {
    "err",
    "status",
    "fee",
    "preBalances",
    "postBalances",
    "innerInstructions",
    "logMessages",
    "preTokenBalances",
    "postTokenBalances",
    "rewards",
    "loadedAddresses",
    "computeUnitsConsumed",
    "costUnits",
}
REAL_MESSAGE_KEYS = {"header", "accountKeys", "recentBlockhash", "instructions", "addressTableLookups"}


def test_get_transaction_has_the_real_answer_shape(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("solana",), history_limit=10)
    launch = sim.emit(1, "launch")[0]
    tx = get_tx(sim, launch.signature)
    assert set(tx) == REAL_TX_KEYS and set(tx["meta"]) == REAL_META_KEYS
    message = tx["transaction"]["message"]
    assert set(message) == REAL_MESSAGE_KEYS and message["accountKeys"][0] == launch.token.creator
    keys = message["accountKeys"]
    assert len(keys) == len(set(keys)) == len(tx["meta"]["preBalances"])
    for group in tx["meta"]["innerInstructions"]:
        assert keys[message["instructions"][group["index"]]["programIdIndex"]] in (
            PUMP,
            "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
        )
        for ix in group["instructions"]:
            assert set(ix) == {"programIdIndex", "accounts", "data", "stackHeight"} and ix["stackHeight"] >= 2
    # Beyond the history limit the node forgets, as a real one prunes.
    sim.emit(40, "trade")
    assert rpc(sim, "getTransaction", launch.signature, {"maxSupportedTransactionVersion": 0})["result"] is None
    kept = rpc(sim, "getSignaturesForAddress", PUMP)["result"]
    assert 10 <= len(kept) < 40 and kept[0]["signature"] == sim.history("solana")[-1]["signature"]


def test_simulate_command_serves_a_solana_node() -> None:
    from test_sim_cli import Cli

    c = Cli("--provider", "solana", "--rate", "40", "--duration", "20")
    try:
        urls = c.urls(2)
        assert set(urls) == {"solana", "solana-rest"}
        with connect(urls["solana"], open_timeout=5, close_timeout=0.3) as ws:
            ws.send(SUBSCRIBE)
            assert isinstance(recv_json(ws)["result"], int)
            value = notifications(ws, 1)[0]["result"]["value"]
        body = {"jsonrpc": "2.0", "id": 1, "method": "getSignaturesForAddress", "params": [PUMP]}
        signatures = requests.post(urls["solana-rest"], json=body, timeout=5).json()["result"]
        assert value["signature"] in [i["signature"] for i in signatures]
        c.proc.send_signal(signal.SIGINT)
        assert c.finish() == 0
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.finish()
