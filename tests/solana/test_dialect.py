"""The ``solana`` dialect, sans-I/O: JSON-RPC frames in, events and protocol outputs out."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from pumpsync.errors import AuthenticationError, ConfigurationError, PlanError
from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, TRADE, Event
from pumpsync.providers._borsh import discriminator
from pumpsync.providers.base import Dropped, Fatal, Malformed, Notice, Reconnect, Reply, Subscribed, Subscription
from pumpsync.providers.solana import (
    CHANNELS,
    PROGRAM_ID,
    SPEC,
    Solana,
    compile_filter,
    http_url,
)

FIXTURES = Path(__file__).parent / "fixtures"
MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
CREATOR = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
SIGNATURE = "2RoRJxatbF9Qkv87jei19u7ei2ckyjjnrCHZBRRAXi4GFJi68kra2iPSk7aoQ9Ugnf5FK5Mdp274hMaVSzn6SN5M"
SLOT = 435946190
NOW = 1_785_327_619_000
AMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
AMM_OFFSET = 100_000  # PumpSwap's subscription id in these tests: the program's plus this


def real_logs() -> list[str]:
    tx = json.loads((FIXTURES / "raw_create_tx_from_gettransaction.json").read_text())
    logs: list[str] = tx["result"]["meta"]["logMessages"]
    return logs


def captured() -> list[str]:
    return (FIXTURES / "captured_program_data.txt").read_text().splitlines()


def subscribed(channels: dict[str, dict[str, Any]] | None = None, sub_id: int = 24040) -> Solana:
    channels = {ch: {} for ch in CHANNELS} if channels is None else channels
    dialect = Solana(0, [Subscription(ch, f) for ch, f in channels.items()])
    frame, _clock = dialect.on_open()  # the logs subscription, then the data clock (slotSubscribe)
    request = json.loads(frame)
    outputs = dialect.receive(json.dumps({"jsonrpc": "2.0", "result": sub_id, "id": request["id"]}), NOW)
    # Trades are acknowledged once PumpSwap's subscription is answered too (a gap's fetch waits for them).
    others = [ch for ch in channels if ch != "trades"]
    assert outputs[: len(others)] == [Subscribed(ch) for ch in others]
    if "trades" in channels:  # then PumpSwap's logs: a graduated coin's trades
        (amm,) = outputs[len(others) :]
        assert isinstance(amm, Reply)
        request = json.loads(amm.text)
        assert request["params"] == [{"mentions": [AMM]}, {"commitment": dialect.commitment}]
        reply = {"jsonrpc": "2.0", "result": sub_id + AMM_OFFSET, "id": request["id"]}
        assert dialect.receive(json.dumps(reply), NOW) == [Subscribed("trades")]
    else:
        assert len(outputs) == len(channels)
    return dialect


def notification(logs: list[Any] | None, err: Any = None, sub_id: int = 24040, slot: Any = SLOT) -> str:
    value = {"signature": SIGNATURE, "err": err, "logs": logs}
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "logsNotification",
            "params": {"result": {"context": {"slot": slot}, "value": value}, "subscription": sub_id},
        }
    )


def events(outputs: list[Any]) -> list[Event]:
    return [out for out in outputs if isinstance(out, Event)]


# ---------------------------------------------------------------- the wire


def test_subscribe_request() -> None:
    dialect = Solana(0, [Subscription("trades")])
    frame, _clock = dialect.on_open()  # the logs subscription, then the data clock (slotSubscribe)
    request = json.loads(frame)
    assert request["jsonrpc"] == "2.0" and request["method"] == "logsSubscribe"
    assert request["params"] == [{"mentions": [PROGRAM_ID]}, {"commitment": "confirmed"}]
    assert dialect.awaiting_subscription
    processed = Solana(0, [Subscription("trades")], commitment="processed")
    assert json.loads(processed.on_open()[0])["params"][1] == {"commitment": "processed"}
    with pytest.raises(ConfigurationError, match="commitment"):
        Solana(0, [], commitment="final")


def test_reply_maps_the_subscription_and_unsubscribe_on_close() -> None:
    dialect = subscribed(sub_id=77)
    assert not dialect.awaiting_subscription
    frame, amm = dialect.on_close()
    request = json.loads(frame)
    assert request["method"] == "logsUnsubscribe" and request["params"] == [77]
    assert json.loads(amm)["params"] == [77 + AMM_OFFSET]
    assert dialect.receive(json.dumps({"jsonrpc": "2.0", "result": True, "id": request["id"]}), NOW) == []
    assert dialect.on_close() == []  # once
    # Notifications of the old subscription are counted, not delivered.
    assert dialect.receive(notification(real_logs(), sub_id=77), NOW) == [Malformed("unknown_subscription")]


def test_notification_of_another_subscription_is_counted() -> None:
    dialect = subscribed(sub_id=5)
    assert dialect.receive(notification(real_logs(), sub_id=6), NOW) == [Malformed("unknown_subscription")]


def test_channels_come_and_go_on_one_node_subscription() -> None:
    dialect = subscribed({"trades": {}}, sub_id=9)
    assert dialect.subscribe(Subscription("creations")) == []  # the node subscription serves it already
    assert [e.kind for e in events(dialect.receive(notification(real_logs(), sub_id=9), NOW))] == [NEW_TOKEN, TRADE]
    (frame,) = dialect.unsubscribe("trades")  # PumpSwap's subscription served only trades
    assert json.loads(frame)["params"] == [9 + AMM_OFFSET]
    (frame,) = dialect.unsubscribe("creations")  # the last one: the node subscription goes
    assert json.loads(frame)["method"] == "logsUnsubscribe"
    (frame,) = dialect.subscribe(Subscription("trades"))
    assert json.loads(frame)["method"] == "logsSubscribe"


def test_unsubscribed_while_the_subscription_was_pending() -> None:
    dialect = Solana(0, [Subscription("trades")])
    frame, _clock = dialect.on_open()  # the logs subscription, then the data clock (slotSubscribe)
    assert dialect.unsubscribe("trades") == []  # nothing to unsubscribe yet
    outputs = dialect.receive(json.dumps({"jsonrpc": "2.0", "result": 3, "id": json.loads(frame)["id"]}), NOW)
    assert len(outputs) == 1 and isinstance(outputs[0], Reply)
    assert json.loads(outputs[0].text)["params"] == [3]


def test_a_reply_to_nothing_we_asked() -> None:
    dialect = subscribed()
    assert dialect.receive('{"jsonrpc":"2.0","result":1,"id":999}', NOW) == [Malformed("protocol")]


def _error(code: int, message: str) -> list[Any]:
    dialect = Solana(0, [Subscription("trades")])
    request = json.loads(dialect.on_open()[0])
    reply = {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request["id"]}
    return dialect.receive(json.dumps(reply), NOW)


def test_rate_limit_error_retries_with_the_floor() -> None:
    (out,) = _error(429, "Too many requests for a specific RPC call")
    assert isinstance(out, Reconnect) and out.rate_limited and out.reason == "rate_limited"
    (out,) = _error(-32005, "rate limit exceeded")
    assert isinstance(out, Reconnect) and out.rate_limited


def test_refused_key_is_fatal_and_names_the_node_message() -> None:
    (out,) = _error(-32401, "Invalid API key provided")
    assert isinstance(out, Fatal) and isinstance(out.error, AuthenticationError)
    assert "Invalid API key provided" in str(out.error) and out.error.provider == "solana"


def test_refused_method_is_fatal_and_names_the_node_message() -> None:
    (out,) = _error(-32601, "Method not found")
    assert isinstance(out, Fatal) and isinstance(out.error, PlanError)
    assert "Method not found" in str(out.error)
    (out,) = _error(-32000, "logsSubscribe is not allowed on the free plan")
    assert isinstance(out, Fatal) and "not allowed on the free plan" in str(out.error)


def test_other_subscribe_errors_reconnect() -> None:
    (out,) = _error(-32603, "Internal error")
    assert isinstance(out, Reconnect) and not out.rate_limited and "Internal error" in out.message
    (out,) = _error(-32000, "Node is behind; see the explanation at https://docs.example")  # "plan" inside a word
    assert isinstance(out, Reconnect)


def test_unsubscribe_error_is_a_notice() -> None:
    dialect = subscribed()
    request = json.loads(dialect.on_close()[0])
    reply = {"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid subscription id"}, "id": request["id"]}
    (out,) = dialect.receive(json.dumps(reply), NOW)
    assert isinstance(out, Notice) and "Invalid subscription id" in out.message and out.code == "rpc_error"


# ---------------------------------------------------------------- decoding


def test_real_transaction_logs() -> None:
    """The logs of a real CreateV2 + first buy: a new_token, then a trade; ExtendAccountEvent quietly skipped."""
    outputs = subscribed().receive(notification(real_logs()), NOW)
    skipped, create, trade = outputs  # reasons as met; the events after the whole log (a v3 buy joins)
    assert skipped == Dropped("unmapped_event")  # ExtendAccountEvent: real, not a pumpsync event
    assert isinstance(create, Event) and isinstance(trade, Event)
    assert create.kind == NEW_TOKEN and create.channel == "creations" and create.provider == "solana"
    assert (create.mint, create.name, create.symbol, create.creator) == (MINT, "The Ass Statue", "TAS", CREATOR)
    assert create.uri == "https://meta.uxento.io/data/714b0bec-90cb-4cbb-9598-b7bcbcd3bd06"
    assert (create.signature, create.slot, create.timestamp) == (SIGNATURE, SLOT, 1785327618000)
    assert (create.received_at, create.connection, create.backfill) == (NOW, 0, False)
    assert create.raw["event"] == "CreateEvent"
    assert create.raw["virtual_token_reserves"] == 1_073_000_000_000_000
    assert create.raw["virtual_sol_reserves"] == 30_000_000_000
    assert (create.virtual_sol_reserves, create.virtual_token_reserves) == (30.0, 1_073_000_000.0)
    assert trade.venue == "curve" and trade.creator == CREATOR
    assert trade.kind == TRADE and trade.channel == "trades"
    assert (trade.side, trade.trader, trade.mint) == ("buy", CREATOR, MINT)
    assert trade.sol_amount == 2_962_962_962 / 1e9
    assert trade.token_amount == 96_449_438_144_093 / 1e6
    assert trade.price_sol == (32_962_962_962 / 1e9) / (976_550_561_855_907 / 1e6)
    assert (trade.signature, trade.slot, trade.timestamp) == (SIGNATURE, SLOT, 1785327618000)
    assert trade.raw["fee"] == 28_148_149 and trade.raw["ix_name"] == "buy_exact_sol_in"
    assert trade.raw["sol_amount"] == 2_962_962_962 and type(trade.raw["sol_amount"]) is int
    assert trade.identity != create.identity


def _data_line(name: str, body: bytes) -> str:
    import base64

    return "Program data: " + base64.b64encode(discriminator(name) + body).decode()


def _key(n: int) -> bytes:
    return bytes([n]) * 32


def test_graduations() -> None:
    import struct

    from pumpsync.providers._borsh import b58encode

    complete = _key(1) + _key(2) + _key(3) + struct.pack("<q", 1_700_000_000) + bytes(32)
    migration = _key(1) + _key(2) + struct.pack("<QQQ", 10, 85_005_359_057, 15_000_000) + _key(3)
    migration += struct.pack("<q", 1_700_000_001) + _key(4) + bytes(32)
    logs = [f"Program {PROGRAM_ID} invoke [1]", _data_line("CompleteEvent", complete), f"Program {PROGRAM_ID} success"]
    logs += [f"Program {PROGRAM_ID} invoke [1]", _data_line("CompletePumpAmmMigrationEvent", migration)]
    first, second = subscribed().receive(notification(logs), NOW)
    assert isinstance(first, Event) and isinstance(second, Event)
    assert (first.kind, second.kind) == (GRADUATION, MIGRATION)
    assert first.channel == second.channel == "graduations"
    assert first.mint == second.mint == b58encode(_key(2))
    assert first.raw["event"] == "CompleteEvent" and first.timestamp == 1_700_000_000_000
    assert first.liquidity_sol is None
    assert second.raw["event"] == "CompletePumpAmmMigrationEvent" and second.raw["pool"] == b58encode(_key(4))
    assert second.liquidity_sol == 85.005359057 and second.timestamp == 1_700_000_001_000


def test_failed_transaction_is_counted_not_delivered() -> None:
    err = {"InstructionError": [3, {"Custom": 6002}]}
    assert subscribed().receive(notification(real_logs(), err=err), NOW) == [Malformed("failed_tx")]


def test_truncated_log_keeps_what_came_before() -> None:
    logs = real_logs()
    cut = next(i for i, line in enumerate(logs) if "Instruction: BuyExactSolIn" in line)
    outputs = subscribed().receive(notification([*logs[:cut], "Log truncated"]), NOW)
    assert [type(o).__name__ for o in outputs] == ["Dropped", "Event", "Malformed", "Refetch"]
    assert outputs[2] == Malformed("log_truncated")
    assert type(outputs[3]).__name__ == "Refetch" and outputs[3].slot == outputs[1].slot  # the rest via getTransaction


def test_other_programs_events_are_not_ours() -> None:
    """A wrapper or an aggregator writes its own Program data lines in a transaction mentioning the program."""
    other = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"  # Jupiter's aggregator
    line = captured()[1]
    logs = [f"Program {other} invoke [1]", line, f"Program {PROGRAM_ID} invoke [2]", line]
    logs += [f"Program {PROGRAM_ID} success", line, f"Program {other} success"]
    assert len(events(subscribed().receive(notification(logs), NOW))) == 1


def test_unknown_and_undecodable_lines_are_counted() -> None:
    logs = ["Program data: AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Program data: !!!", "Program data: vdt/007mYe4="]
    logs.append(captured()[0])
    outputs = subscribed().receive(notification(logs), NOW)
    assert outputs[:3] == [Malformed("unknown_event"), Malformed("undecodable"), Malformed("undecodable")]
    assert isinstance(outputs[3], Event)


def test_odd_notifications() -> None:
    dialect = subscribed()
    assert dialect.receive(notification(None), NOW) == []  # logs may be null
    assert dialect.receive(notification([1, None, {"a": 1}, captured()[0]]), NOW)[0].kind == NEW_TOKEN  # type: ignore[union-attr]
    (event,) = dialect.receive(notification([captured()[0]], slot=-1), NOW)
    assert isinstance(event, Event) and event.slot is None
    for bad in ('{"jsonrpc":"2.0","method":"logsNotification"}', '{"method":"logsNotification","params":{}}'):
        outputs = dialect.receive(bad, NOW)
        assert isinstance(outputs[0], Malformed)


def test_hostile_frames_never_raise() -> None:
    rng = random.Random(7)
    dialect = subscribed()
    base = json.loads(notification(real_logs()))
    pieces: list[Any] = [None, 1, -1, 2**70, "x", [], {}, [None], {"a": []}, True, 1.5]
    for _ in range(2000):
        frame = json.loads(json.dumps(base))
        target = frame["params"]["result"]
        key = rng.choice(["context", "value", "slot", "signature", "err", "logs", "subscription"])
        if key in ("context", "value"):
            target[key] = rng.choice(pieces)
        elif key == "subscription":
            frame["params"]["subscription"] = rng.choice(pieces)
        elif key == "slot":
            target["context"]["slot"] = rng.choice(pieces)
        elif key == "logs":
            logs = list(target["value"]["logs"])
            logs[rng.randrange(len(logs))] = rng.choice([*pieces, "Program data: " + "A" * rng.randrange(50)])
            target["value"]["logs"] = logs
        else:
            target["value"][key] = rng.choice(pieces)
        dialect.receive(json.dumps(frame), NOW)
    for junk in (b"\xff", b"[]", b"null", b"{", b'{"id": 1, "result": 5}', b'{"id": [], "error": 1}'):
        dialect.receive(junk, NOW)


# ---------------------------------------------------------------- filters


def _only(channel: str, filters: dict[str, Any]) -> list[Event]:
    dialect = subscribed({channel: filters})
    return events(dialect.receive(notification(real_logs()), NOW))


def test_filters() -> None:
    assert len(_only("trades", {})) == 1
    assert len(_only("trades", {"mints": [MINT]})) == 1
    assert _only("trades", {"mints": ["So11111111111111111111111111111111111111112"]}) == []
    assert len(_only("trades", {"wallets": CREATOR})) == 1
    assert _only("trades", {"wallets": ["62qc2CNXwrYqQScmEdiZFFAnJR262PxWEuNQtxfafNgV"]}) == []
    assert len(_only("trades", {"minSol": 2.9})) == 1
    assert _only("trades", {"minSol": 3}) == []
    assert len(_only("trades", {"side": "buy"})) == 1
    assert _only("trades", {"side": "sell"}) == []
    assert [e.kind for e in _only("creations", {"wallets": [CREATOR]})] == [NEW_TOKEN]
    assert _only("creations", {"mints": ["x"]}) == []
    assert _only("graduations", {}) == []


def test_filter_errors_name_the_key() -> None:
    with pytest.raises(ConfigurationError, match="'minsol'"):
        compile_filter("trades", {"minsol": 1})
    with pytest.raises(ConfigurationError, match="'side'"):
        compile_filter("creations", {"side": "buy"})
    with pytest.raises(ConfigurationError, match="minSol"):
        compile_filter("trades", {"minSol": "1"})
    with pytest.raises(ConfigurationError, match="side"):
        compile_filter("trades", {"side": "both"})
    with pytest.raises(ConfigurationError, match="mints"):
        compile_filter("trades", {"mints": [1]})
    with pytest.raises(ConfigurationError, match="channel"):
        compile_filter("prices", {})
    with pytest.raises(ConfigurationError, match="'wallet'"):
        Solana(0, [Subscription("trades", {"wallet": CREATOR})])


# ---------------------------------------------------------------- the spec


def test_spec() -> None:
    assert SPEC.name == "solana" and SPEC.dialect is Solana
    assert SPEC.default_url == "wss://api.mainnet-beta.solana.com"
    assert SPEC.channels == SPEC.default_channels == ("creations", "trades", "graduations")
    assert SPEC.key_required is False and SPEC.heartbeat == "ws_ping"
    assert SPEC.max_frame_size == 32 * 1024 * 1024
    assert SPEC.options_class().commitment == "confirmed"  # type: ignore[attr-defined]
    assert set(SPEC.filters["trades"]) >= {"mints", "wallets", "minSol", "side"}
    assert SPEC.history is not None


def test_handshake_and_http_url() -> None:
    from pumpsync._secrets import ApiKey

    dialect = Solana(0, [])
    url = "wss://mainnet.helius-rpc.com/?api-key=KEY"
    assert dialect.handshake(url, ApiKey(""), "none").url == url
    assert dialect.handshake("wss://node.example/", ApiKey("K3Y"), "query").url == "wss://node.example/?api-key=K3Y"
    assert dialect.handshake("wss://n.example/", ApiKey("K3Y"), "header").headers == {"Authorization": "Bearer K3Y"}
    assert http_url(url) == "https://mainnet.helius-rpc.com/?api-key=KEY"
    assert http_url("ws://127.0.0.1:8900/path") == "http://127.0.0.1:8900/path"


def test_check_config() -> None:
    from types import SimpleNamespace

    from pumpsync.providers.solana import check_config

    def config(**options: Any) -> Any:
        base: dict[str, Any] = {"channels": (Subscription("trades", {"minSol": 1}),), "commitment": None}
        return SimpleNamespace(**{**base, **options})

    check_config(config())
    check_config(config(commitment="finalized", max_gap_transactions=10))
    with pytest.raises(ConfigurationError, match="commitment"):
        check_config(config(commitment="fast"))
    with pytest.raises(ConfigurationError, match="minSol"):
        check_config(config(channels=(Subscription("trades", {"minSol": -1}),)))
    with pytest.raises(ConfigurationError, match="max_gap_transactions"):
        check_config(config(max_gap_transactions=0))


def test_awaiting_the_first_subscription_only() -> None:
    dialect = Solana(0, [Subscription("trades")])
    assert not dialect.awaiting_hello
    dialect.on_open()
    assert dialect.awaiting_hello and dialect.on_hello_timeout() == [] and dialect.awaiting_hello
    answered = subscribed({"trades": {}})
    answered.unsubscribe("trades")
    answered.subscribe(Subscription("trades"))  # a runtime re-subscription: never a reason to reconnect
    assert answered.awaiting_subscription and not answered.awaiting_hello


def test_invoke_brackets_in_log_lines_are_not_nesting_but_cannot_hide_nesting() -> None:
    """Every invocation's log line ("Program X invoke [1]") holds a bracket inside a string: parse()
    does not count those (so a real notification takes the one-call path), yet a frame that puts the
    same text outside strings to hide deep nesting is still refused (nothing parses past it)."""
    dialect = Solana(0, [Subscription("trades")])
    lines = [f"Program {PROGRAM_ID} invoke [1]"] * 200
    note = {"jsonrpc": "2.0", "method": "logsNotification", "params": {"subscription": 1, "result": {"value": lines}}}
    assert dialect.parse(json.dumps(note).encode()) == note
    for hostile in (b"[" * 5000 + b" invoke [" * 5000, b'{"a":' * 3000 + b" invoke [" * 6000):
        assert isinstance(dialect.parse(hostile), Malformed)
