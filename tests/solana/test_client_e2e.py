"""``solana`` through ``pumpsync.Client`` over real sockets: a stub node (WebSocket + HTTP JSON-RPC)
on 127.0.0.1, written for these tests and sharing no code with the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pumpsync import Client
from pumpsync.config import make_config
from pumpsync.errors import AuthenticationError, ConfigurationError
from pumpsync.events import NEW_TOKEN, TRADE, Event
from pumpsync.providers.solana import PROGRAM_ID
from tests.conftest import wait_until
from tests.solana.rpcstub import WsNode, running_node, running_ws_node, take

FIXTURES = Path(__file__).parent / "fixtures"
MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"


def real_logs() -> list[str]:
    logs: list[str] = json.loads((FIXTURES / "raw_create_tx_from_gettransaction.json").read_text())["result"]["meta"][
        "logMessages"
    ]
    return logs


def trade_logs() -> list[str]:
    line = (FIXTURES / "captured_program_data.txt").read_text().splitlines()[1]
    return [f"Program {PROGRAM_ID} invoke [1]", "Program log: Instruction: Buy", line, f"Program {PROGRAM_ID} success"]


@pytest.fixture
def node() -> Iterator[WsNode]:
    with running_ws_node() as ws:
        yield ws


def solana_client(make_client: Callable[..., Client], node: WsNode, **options: Any) -> Client:
    options.setdefault("rest_url", f"http://127.0.0.1:{node.history.port}/")
    return make_client("solana", node.url, **options)


def test_live_events(make_client: Callable[..., Client], node: WsNode) -> None:
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    assert node.requests[0]["params"] == [{"mentions": [PROGRAM_ID]}, {"commitment": "confirmed"}]
    node.push("FAILED", 9, real_logs(), err={"InstructionError": [0, {"Custom": 1}]})
    node.push("SIG1", 10, real_logs())
    create, trade = take(client, 2)
    assert (create.kind, trade.kind) == (NEW_TOKEN, TRADE)
    assert create.name == "The Ass Statue" and trade.sol_amount == 2.962962962 and trade.mint == MINT
    assert create.slot == trade.slot == 10 and not trade.backfill
    stats = client.stats()
    assert stats["connections"][0]["malformed"]["failed_tx"] == 1


def test_commitment_option(make_client: Callable[..., Client], node: WsNode) -> None:
    client = solana_client(make_client, node, commitment="processed")
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    assert node.requests[0]["params"][1] == {"commitment": "processed"}


def test_frames_over_one_mebibyte(make_client: Callable[..., Client], node: WsNode) -> None:
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    padding = ["Program log: " + "x" * 1000] * 1500  # a busy slot's 1.5 MB frame
    node.push("BIG", 11, [*padding, *trade_logs()])
    (trade,) = take(client, 1)
    assert trade.signature == "BIG"


def test_rate_limited_subscribe_retries(make_client: Callable[..., Client], node: WsNode) -> None:
    node.subscribe_answers.append({"code": 429, "message": "Too many requests for a specific RPC call"})
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="a second logsSubscribe")
    node.push("SIG2", 12, trade_logs())
    assert take(client, 1)[0].signature == "SIG2"
    disconnects = client.stats()["connections"][0]["disconnects"]
    assert any("rate_limited" in str(key) for key in disconnects)


def test_refused_key_is_fatal(make_client: Callable[..., Client], node: WsNode) -> None:
    node.subscribe_answers.append({"code": -32401, "message": "Invalid API key"})
    client = solana_client(make_client, node)
    client.start()
    item = client.queue.get(timeout=10)
    assert isinstance(item, AuthenticationError) and "Invalid API key" in str(item)


def test_unsubscribe_on_close(make_client: Callable[..., Client], node: WsNode) -> None:
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    client.close()
    wait_until(lambda: any(r["method"] == "logsUnsubscribe" for r in node.requests), what="the logsUnsubscribe")


def test_gap_recovered_in_order_exactly_once(make_client: Callable[..., Client], node: WsNode) -> None:
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    node.push("A", 20, trade_logs())
    assert [e.signature for e in take(client, 1)] == ["A"]
    node.push("B", 21, trade_logs(), live=False)  # notifications the node never sent
    node.push("C", 22, real_logs(), live=False)
    node.drop_all()
    wait_until(lambda: node.subscribers() == 1 and len(node.requests) >= 2, what="the reconnection")
    wait_until(lambda: node.history.methods("getTransaction"), what="the gap recovery")
    node.push("D", 23, trade_logs())
    events = take(client, 4)
    assert [(e.signature, e.kind, e.backfill) for e in events] == [
        ("B", TRADE, True),
        ("C", NEW_TOKEN, True),
        ("C", TRADE, True),
        ("D", TRADE, False),
    ]
    assert node.history.methods("getSignaturesForAddress")[0][1]["until"] == "A"  # paged back to A's signature


def test_no_key_needed_and_keys_in_urls_never_shown() -> None:
    config = make_config("solana")
    assert config.api_key is None and config.url == "wss://api.mainnet-beta.solana.com"
    assert config.commitment == "confirmed" and config.max_frame_size == 32 * 1024 * 1024
    keyed = make_config("solana", url=["wss://rpc-a.example/SECRETPATHKEY", "wss://b.example/?api-key=SECRETQ"])
    assert keyed.connections == 2
    assert "SECRETPATHKEY" not in repr(keyed) and "SECRETQ" not in repr(keyed)
    with pytest.raises(ConfigurationError, match="'wallet'"):
        make_config("solana", channels={"trades": {"wallet": "x"}})
    with pytest.raises(ConfigurationError, match="commitment"):
        make_config("solana", commitment="fastest")
    with pytest.raises(ConfigurationError, match="commitment"):
        make_config("anaxer", api_key="k", commitment="processed")  # a solana-only option


def test_cli_stream(node: WsNode) -> None:
    """`pumpsync stream --provider solana` as a user runs it, with the node's key in its URL."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PUMPSYNC_API_KEY"}
    args = ["stream", "--provider", "solana", "--url", node.url + "?api-key=S3CRETKEY", "--commitment", "processed"]
    args += ["--rest-url", f"http://127.0.0.1:{node.history.port}/", "--format", "jsonl", "--count", "2"]
    args += ["--channel", "creations", "--channel", 'trades:{"minSol":1,"side":"buy"}']
    process = subprocess.Popen(
        [sys.executable, "-m", "pumpsync", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        wait_until(lambda: node.subscribers() == 1 or process.poll() is not None, what="the CLI's logsSubscribe")
        assert node.requests[0]["params"][1] == {"commitment": "processed"}
        node.push("CLI1", 30, real_logs())
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(line["kind"], line["signature"]) for line in lines] == [("new_token", "CLI1"), ("trade", "CLI1")]
    assert lines[1]["raw"]["sol_amount"] == 2_962_962_962 and lines[1]["sol_amount"] == 2.962962962
    assert "S3CRETKEY" not in out + err


def test_two_nodes_each_event_once(make_client: Callable[..., Client], node: WsNode) -> None:
    """``url=[a, b]``: one connection per node; each event once, from whichever node was first."""
    with running_node() as http_b:
        other = WsNode(http_b).start()
        try:
            client = make_client("solana", [node.url, other.url], rest_url=f"http://127.0.0.1:{node.history.port}/")
            client.start()
            wait_until(lambda: node.subscribers() == 1 and other.subscribers() == 1, what="both subscriptions")
            node.push("R1", 40, trade_logs())
            other.push("R1", 40, trade_logs())
            other.push("R2", 41, trade_logs())
            node.push("R2", 41, trade_logs())
            assert sorted(e.signature or "" for e in take(client, 2)) == ["R1", "R2"]
            wait_until(
                lambda: sum(c["first_deliveries"] for c in client.stats()["connections"]) == 2, what="the counts"
            )
            node.push("R3", 42, trade_logs())
            assert take(client, 1)[0].signature == "R3"
            assert client.queue.empty()
        finally:
            other.stop()


def test_a_node_that_never_answers_logs_subscribe(make_client: Callable[..., Client], node: WsNode) -> None:
    """Pong frames keep such a socket looking alive: the unanswered subscription ends the session."""
    node.subscribe_answers.append("silent")
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="a second, answered logsSubscribe")
    node.push("AFTER", 50, trade_logs())
    assert take(client, 1)[0].signature == "AFTER"
    assert client.stats()["connections"][0]["disconnects"].get("hello_timeout") == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exactly_once_through_drops_and_429s(make_client: Callable[..., Client], node: WsNode, seed: int) -> None:
    """Random network drops and 429s on history: every transaction once."""
    got = _drops_and_429s(make_client, node, seed)
    assert len(got) == len({e.signature for e in got})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slot_order_through_drops_and_429s(make_client: Callable[..., Client], node: WsNode, seed: int) -> None:
    """The same, in slot order: a drop during a recovery misses later slots, and the live copies held
    for earlier ones go out before them (after f7b0f32 they followed: 1042 after 1056)."""
    got = _drops_and_429s(make_client, node, seed)
    assert [e.slot for e in got] == sorted(e.slot or 0 for e in got), [(e.slot, e.backfill) for e in got]


def _drops_and_429s(make_client: Callable[..., Client], node: WsNode, seed: int) -> list[Event]:
    import random

    rng = random.Random(seed)
    client = solana_client(make_client, node)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    sent = [f"T{seed}-{i}" for i in range(80)]
    for slot, signature in enumerate(sent, start=1000):
        roll = rng.random()
        if roll < 0.06:
            node.drop_all()
        elif roll < 0.12:
            node.history.faults.append((429, {"Retry-After": "0"}, None))
        elif roll < 0.15:
            wait_until(lambda: node.subscribers() == 1, what="a reconnection")  # let some go live
        node.push(signature, slot, trade_logs())
    got: list[Event] = []

    def all_in() -> bool:
        while not client.queue.empty():
            item = client.queue.get_nowait()
            assert isinstance(item, Event), item
            got.append(item)
        return len({e.signature for e in got}) == len(sent)

    wait_until(lambda: node.subscribers() == 1, what="the last reconnection")
    node.push("LAST", 2000, trade_logs())  # and a live one after everything
    sent.append("LAST")
    wait_until(all_in, timeout=30, what="every transaction")
    assert sorted(e.signature or "" for e in got) == sorted(sent)  # each once
    return got
