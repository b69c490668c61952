"""Gap recovery for ``solana`` against a stub JSON-RPC node on 127.0.0.1 (real HTTP, no mocks)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pumpsync._secrets import ApiKey
from pumpsync.config import ClientConfig
from pumpsync.events import NEW_TOKEN, TRADE, Event
from pumpsync.providers.base import Subscription
from pumpsync.providers.solana import CHANNELS, PROGRAM_ID, PUMPSWAP_PROGRAM_ID, Solana
from pumpsync.providers.solana_history import SolanaHistory
from pumpsync.providers.spec import HistoryError, Position
from tests.solana.rpcstub import Node, running_node

FIXTURES = Path(__file__).parent / "fixtures"
SIGNATURE = "2RoRJxatbF9Qkv87jei19u7ei2ckyjjnrCHZBRRAXi4GFJi68kra2iPSk7aoQ9Ugnf5FK5Mdp274hMaVSzn6SN5M"
SLOT = 435946190
ALL = {channel: {} for channel in CHANNELS}


def real_tx() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((FIXTURES / "raw_create_tx_from_gettransaction.json").read_text())["result"]
    return result


def trade_line() -> str:
    return (FIXTURES / "captured_program_data.txt").read_text().splitlines()[1]


def synthetic_tx(slot: int) -> dict[str, Any]:
    logs = [f"Program {PROGRAM_ID} invoke [1]", trade_line(), f"Program {PROGRAM_ID} success"]
    return {"slot": slot, "meta": {"err": None, "logMessages": logs}, "transaction": {"message": {}}}


@pytest.fixture
def node() -> Iterator[Node]:
    with running_node() as node:
        yield node


def history(node: Node, key: str = "", **options: Any) -> SolanaHistory:
    config = ClientConfig(
        provider="solana",
        api_key=ApiKey(key),
        url=f"ws://127.0.0.1:{node.port}/?api-key={key}" if key else f"ws://127.0.0.1:{node.port}/",
        backoff_initial=0.01,
        backoff_max=0.05,
    )
    return SolanaHistory(config, **options)


def fetch_all(source: SolanaHistory, since: Position, channels: dict[str, dict[str, Any]] = ALL) -> list[Event]:
    try:
        return [event for page in source.fetch(channels, since, threading.Event()) for event in page]
    finally:
        source.close()


def live_events(logs: list[str]) -> list[Event]:
    """What the live dialect makes of the same logs."""
    dialect = Solana(0, [Subscription(ch) for ch in CHANNELS])
    request = json.loads(dialect.on_open()[0])
    dialect.receive(json.dumps({"jsonrpc": "2.0", "result": 1, "id": request["id"]}), 0)
    value = {"signature": SIGNATURE, "err": None, "logs": logs}
    frame = {"method": "logsNotification", "params": {"result": {"context": {"slot": SLOT}, "value": value}}}
    frame["params"]["subscription"] = 1
    return [out for out in dialect.receive(json.dumps(frame), 0) if isinstance(out, Event)]


def same(a: list[Event], b: list[Event]) -> None:
    """The same events, whenever received and by whichever path."""

    def plain(events: list[Event]) -> list[Event]:
        return [e._replace(received_at=0, backfill=True) for e in events]

    assert plain(a) == plain(b)


def test_the_real_transaction(node: Node) -> None:
    node.add("older", SLOT - 5, synthetic_tx(SLOT - 5))
    node.add(SIGNATURE, SLOT, real_tx())
    events = fetch_all(history(node), Position(SLOT - 5, "older"))
    create, trade = events
    assert (create.kind, trade.kind) == (NEW_TOKEN, TRADE)
    assert all(e.backfill and e.signature == SIGNATURE and e.slot == SLOT for e in events)
    assert create.name == "The Ass Statue" and create.symbol == "TAS"
    assert create.mint == trade.mint == "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
    assert create.creator == trade.trader == "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
    assert create.timestamp == trade.timestamp == 1785327618000
    assert trade.raw["sol_amount"] == 2_962_962_962 and trade.raw["token_amount"] == 96_449_438_144_093
    assert trade.raw["fee"] == 28_148_149 and trade.raw["fee_basis_points"] == 95
    assert trade.raw["ix_name"] == "buy_exact_sol_in" and trade.side == "buy"
    assert create.raw["virtual_token_reserves"] == 1_073_000_000_000_000
    assert create.raw["virtual_sol_reserves"] == 30_000_000_000
    same(events, live_events(real_tx()["meta"]["logMessages"]))  # exactly what the live stream gives
    # The program's back to "older", the rest of its slot before it, then PumpSwap's (for trades).
    params, rest, amm, *again = node.methods("getSignaturesForAddress")
    # one listing each, cut at the slot read before them (getSlot): no round again
    assert again == [] and node.methods("getSlot") == [[{"commitment": "confirmed"}]]
    assert params[0] == PROGRAM_ID and params[1]["until"] == "older" and params[1]["commitment"] == "confirmed"
    assert rest[0] == PROGRAM_ID and rest[1]["before"] == "older" and "until" not in rest[1]
    assert amm[0] == PUMPSWAP_PROGRAM_ID and "until" not in amm[1]  # bounded by the slot: not its signature
    (params,) = node.methods("getTransaction")
    assert params == [SIGNATURE, {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": "confirmed"}]


def _truncated(tx: dict[str, Any]) -> dict[str, Any]:
    tx = copy.deepcopy(tx)
    logs = tx["meta"]["logMessages"]
    cut = next(i for i, line in enumerate(logs) if "Instruction: BuyExactSolIn" in line)
    tx["meta"]["logMessages"] = [*logs[:cut], "Log truncated"]
    return tx


def test_truncated_log_recovered_from_inner_instructions(node: Node) -> None:
    node.add(SIGNATURE, SLOT, _truncated(real_tx()))
    source = history(node)
    events = fetch_all(source, Position(SLOT - 1))
    same(events, live_events(real_tx()["meta"]["logMessages"]))  # the trade too, from the self-CPI
    assert source.counts["truncated_recovered"] == 1 and source.counts["log_truncated"] == 0


def test_refetch_one_transaction(node: Node) -> None:
    """A live notification cut short: its transaction, fetched again, gives every event."""
    node.add(SIGNATURE, SLOT, real_tx())
    source = history(node)
    try:
        events = source.refetch(SIGNATURE, SLOT, ALL, threading.Event())
        assert source.refetch("unknown", SLOT, ALL, threading.Event()) == []
    finally:
        source.close()
    same(events, live_events(real_tx()["meta"]["logMessages"]))
    assert source.counts["unavailable"] == 1


def test_truncated_log_recovered_in_json_encoding(node: Node) -> None:
    """``encoding: json`` (what we ask for): program ids are indexes into the account keys."""
    tx = _truncated(real_tx())
    message = tx["transaction"]["message"]
    keys = [key["pubkey"] for key in message["accountKeys"]]
    message["accountKeys"] = keys
    for group in tx["meta"]["innerInstructions"]:
        for ins in group["instructions"]:
            program = ins.pop("programId")
            ins.pop("parsed", None)
            ins.pop("program", None)
            ins["programIdIndex"] = keys.index(program)
            ins.setdefault("data", "")
    node.add(SIGNATURE, SLOT, tx)
    same(fetch_all(history(node), Position(SLOT - 1)), live_events(real_tx()["meta"]["logMessages"]))


def test_truncated_log_without_inner_instructions_is_a_counted_loss(node: Node) -> None:
    tx = _truncated(real_tx())
    tx["meta"]["innerInstructions"] = None
    node.add(SIGNATURE, SLOT, tx)
    source = history(node)
    events = fetch_all(source, Position(SLOT - 1))
    assert [e.kind for e in events] == [NEW_TOKEN]  # what came before the cut
    assert source.counts["log_truncated"] == 1


def test_pages_until_the_last_signature_oldest_first(node: Node) -> None:
    for i in range(30):
        node.add(f"sig{i}", 1000 + i // 3, synthetic_tx(1000 + i // 3))
    source = history(node, page_limit=7, concurrency=3)
    events = fetch_all(source, Position(1001, "sig4"))
    # sig3 shares sig4's slot: fetched too (the recovery skips it as a duplicate if it was delivered)
    assert [e.signature for e in events] == ["sig3"] + [f"sig{i}" for i in range(5, 30)]
    pages = [p for p in node.methods("getSignaturesForAddress") if p[0] == PROGRAM_ID]
    # 7 + 7 + 7 + 4 back to sig4, then the rest of its slot; no round again (the cut is a slot read first)
    assert len(pages) == 5
    assert all(p[1]["until"] == "sig4" and p[1]["limit"] == 7 for p in pages[:4])
    assert [p[1].get("before") for p in pages[:5]] == [None, "sig23", "sig16", "sig9", "sig4"]
    assert "until" not in pages[4][1]
    assert node.max_inflight <= 3


def test_without_a_signature_the_slot_bounds_the_gap(node: Node) -> None:
    for i in range(10):
        node.add(f"sig{i}", 1000 + i, synthetic_tx(1000 + i))
    events = fetch_all(history(node, page_limit=4), Position(1006))
    assert [e.signature for e in events] == ["sig6", "sig7", "sig8", "sig9"]  # the slot itself included


def test_failed_transactions_are_not_fetched(node: Node) -> None:
    node.add("ok", 10, synthetic_tx(10))
    node.add("failed", 11, synthetic_tx(11), err={"InstructionError": [0, "Custom"]})
    source = history(node)
    assert [e.signature for e in fetch_all(source, Position(1))] == ["ok"]
    assert [p[0] for p in node.methods("getTransaction")] == ["ok"]
    assert source.counts["failed_tx"] == 1


def test_ceiling_fetches_the_newest_and_counts_the_rest(node: Node) -> None:
    for i in range(12):
        node.add(f"sig{i}", 100 + i, synthetic_tx(100 + i))
    source = history(node, max_transactions=5, page_limit=4)
    events = fetch_all(source, Position(1))
    assert [e.signature for e in events] == [f"sig{i}" for i in range(7, 12)]
    assert len(node.methods("getTransaction")) == 5
    assert source.counts["ceiling"] == 7


def test_filters_apply_to_history(node: Node) -> None:
    node.add(SIGNATURE, SLOT, real_tx())
    assert fetch_all(history(node), Position(1), {"trades": {"minSol": 3}}) == []
    assert [e.kind for e in fetch_all(history(node), Position(1), {"trades": {"side": "buy"}})] == [TRADE]
    assert fetch_all(history(node), Position(1), {"prices": {}}) == []  # nothing recoverable: no call
    # each trades fetch: the slot (the cut), then the program and PumpSwap once each
    assert len(node.methods("getSignaturesForAddress")) == 4 and len(node.methods("getSlot")) == 2


def test_http_429_and_rate_limit_errors_are_retried(node: Node) -> None:
    node.add(SIGNATURE, SLOT, real_tx())
    node.faults += [(429, {"Retry-After": "0"}, None)] * 2
    node.faults += [(200, {}, {"code": -32005, "message": "Too many requests"})]
    node.faults += [(503, {}, None)]
    source = history(node)
    assert len(fetch_all(source, Position(1))) == 2
    assert source.rate_limited == 3


def test_retry_after_is_honoured(node: Node) -> None:
    """A 429 saying "wait 600 s": no second request is made meanwhile; closing ends the wait at once."""
    node.add(SIGNATURE, SLOT, real_tx())
    node.faults.append((429, {"Retry-After": "600"}, None))
    source = history(node)
    stop = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            list(source.fetch(ALL, Position(1), stop))
        except HistoryError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert node.first_request.wait(10)
    stop.set()
    worker.join(10)
    source.close()
    assert not worker.is_alive() and "closed" in str(outcome[0])
    assert len(node.calls) == 1


def test_refusals_are_history_errors_without_the_key(node: Node) -> None:
    node.faults.append((401, {}, None))
    source = history(node, key="s3cr3t-key")
    with pytest.raises(HistoryError, match="HTTP 401") as info:
        fetch_all(source, Position(1))
    assert "s3cr3t" not in str(info.value)
    assert node.calls and source.url.endswith("api-key=s3cr3t-key")  # the key went to the node, only there
    node.faults.append((200, {}, {"code": -32602, "message": "Invalid param: s3cr3t-key"}))
    with pytest.raises(HistoryError, match="Invalid param") as info:
        fetch_all(history(node, key="s3cr3t-key"), Position(1))
    assert "s3cr3t" not in str(info.value)


def test_a_transaction_the_node_will_not_serve_is_counted(node: Node) -> None:
    node.add("gone", 10, None)
    node.add("ok", 11, synthetic_tx(11))
    source = history(node)
    assert [e.signature for e in fetch_all(source, Position(1))] == ["ok"]
    assert source.counts["unavailable"] == 1
    assert [p[0] for p in node.methods("getTransaction")].count("gone") == 3


def test_url_and_commitment() -> None:
    base = dict(provider="solana", api_key=ApiKey(""), url="wss://rpc.example/path?api-key=K")
    assert SolanaHistory(ClientConfig(**base)).url == "https://rpc.example/path?api-key=K"  # type: ignore[arg-type]
    overridden = ClientConfig(**base, rest_url="http://127.0.0.1:1/")  # type: ignore[arg-type]
    assert SolanaHistory(overridden).url == "http://127.0.0.1:1/"
    source = SolanaHistory(ClientConfig(**base))  # type: ignore[arg-type]
    assert source.stream_wide and source.recoverable("trades") and not source.recoverable("prices")


def test_hostile_transactions_never_raise() -> None:
    """Whatever a node answers for a transaction, decoding it counts, never raises."""
    import random

    from pumpsync.providers.solana import compile_filters

    source = SolanaHistory(ClientConfig(provider="solana", api_key=ApiKey(""), url="ws://127.0.0.1:1/"))
    filters = compile_filters(ALL)
    rng = random.Random(3)
    pieces: list[Any] = [None, 1, "x", [], {}, [None], {"a": 1}, [{"programIdIndex": 99, "data": "0OIl"}], -1]
    for _ in range(1500):
        tx = _truncated(real_tx()) if rng.random() < 0.5 else real_tx()
        target = rng.choice(["meta", "transaction", "innerInstructions", "logMessages", "message", "group", "ins"])
        if target in ("meta", "transaction"):
            tx[target] = rng.choice(pieces)
        elif target in ("innerInstructions", "logMessages"):
            tx["meta"][target] = rng.choice(pieces)
        elif target == "message":
            tx["transaction"]["message"] = rng.choice(pieces)
        elif target == "group":
            groups = tx["meta"]["innerInstructions"]
            groups[rng.randrange(len(groups))] = rng.choice(pieces)
        else:
            group = rng.choice(tx["meta"]["innerInstructions"])
            instructions = group["instructions"]
            ins = instructions[rng.randrange(len(instructions))]
            ins[rng.choice(["data", "programId", "programIdIndex"])] = rng.choice(pieces)
        source.events_of(tx, SIGNATURE, SLOT, 0, filters)
    source.close()
