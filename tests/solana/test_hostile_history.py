"""Gap recovery for ``solana`` against a hostile history node (issue 22, items 2, 3, 6 and 12): odd
answers, rate limits forever, a node that accepts and says nothing, a cursor that never advances.
Real sockets on 127.0.0.1: the stub node of ``rpcstub`` (WebSocket + HTTP JSON-RPC), no mocks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pumpsync import Client
from pumpsync._delivery import Delivery
from pumpsync._recovery import _REFETCH_BACKLOG, GapRecovery
from pumpsync._secrets import ApiKey
from pumpsync._stats import ClientStats
from pumpsync.config import ClientConfig, make_config
from pumpsync.events import NEW_TOKEN, TRADE
from pumpsync.providers.base import Subscription
from pumpsync.providers.solana import CHANNELS, PROGRAM_ID
from pumpsync.providers.solana_history import SolanaHistory
from pumpsync.providers.spec import Position
from tests.conftest import wait_until
from tests.solana.rpcstub import Node, WsNode, running_node, running_ws_node, take
from tests.solana.test_client_e2e import trade_logs
from tests.solana.test_history import SIGNATURE, _truncated, real_tx

Hostile = Callable[[str, list[Any]], "tuple[int, dict[str, str], bytes] | None"]


@pytest.fixture
def node() -> Iterator[WsNode]:
    with running_ws_node() as ws:
        yield ws


def rpc(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, headers or {}, body if isinstance(body, bytes) else json.dumps(body).encode()


def open_gap(make_client: Callable[..., Client], node: WsNode, **options: Any) -> Client:
    """A client that saw A live, then lost its socket while B happened: a gap to recover."""
    client = make_client("solana", node.url, rest_url=f"http://127.0.0.1:{node.history.port}/", **options).start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    node.push("A", 20, trade_logs())
    assert [e.signature for e in take(client, 1)] == ["A"]
    node.push("B", 21, trade_logs(), live=False)
    node.drop_all()
    wait_until(lambda: node.subscribers() == 1 and len(node.requests) >= 2, what="the reconnection")
    return client


def push_live(node: WsNode, n: int, first_slot: int = 30) -> list[str]:
    signatures = [f"L{i}" for i in range(n)]
    for i, signature in enumerate(signatures):
        node.push(signature, first_slot + i, trade_logs())
    return signatures


def backfill_alive() -> bool:
    return any(t.name == "pumpsync-backfill" and t.is_alive() for t in threading.enumerate())


def odd_code(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
    return rpc({"jsonrpc": "2.0", "id": 1, "error": {"code": {"x": 1}, "message": "odd"}})


def deeply_nested(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
    return rpc(b"[" * 100_000 + b"]" * 100_000)


def account_keys_not_a_list(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
    if method != "getTransaction":
        return None  # the honest signature list
    logs = [f"Program {PROGRAM_ID} invoke [1]", "Log truncated"]  # cut: the events come from inner instructions
    inner = [{"index": 0, "instructions": [{"programIdIndex": 3, "data": "3Bxs4Bc3VYuGVB19"}]}]
    tx = {
        "slot": 21,
        "meta": {"err": None, "logMessages": logs, "innerInstructions": inner, "loadedAddresses": {"writable": 7}},
        "transaction": {"message": {"accountKeys": 5}},
    }
    return rpc({"jsonrpc": "2.0", "id": 1, "result": tx})


@pytest.mark.parametrize("hostile", [odd_code, deeply_nested, account_keys_not_a_list])
def test_an_odd_history_answer_neither_kills_the_recovery_nor_holds_the_live_stream(
    make_client: Callable[..., Client], node: WsNode, hostile: Hostile
) -> None:
    """22.2: an unhashable error code (TypeError), a body nested 100,000 deep (RecursionError), an
    ``accountKeys`` that is not a list: the recovery thread died, the hold never ended, 0 live
    events were delivered, ``ready`` stayed True and no failure was counted."""
    node.history.hostile = hostile
    client = open_gap(make_client, node)
    wait_until(lambda: node.history.calls, what="the gap recovery's first request")
    signatures = push_live(node, 30)
    assert [e.signature for e in take(client, 30)] == signatures
    report = wait_until(lambda: [g for g in client.gaps() if g.outcome != "pending"], what="the gap's outcome")[-1]
    assert report.since_slot == 20 and report.attempts >= 1
    if hostile is account_keys_not_a_list:  # read, typed: no event CPI to recover the cut from: counted lost
        assert report.outcome == "lost" and client.stats()["backfill"]["failures"] == 0
    else:  # refused: counted, retried a bounded number of times, then reported lost
        assert report.outcome == "lost" and report.attempts == 5
        assert client.stats()["backfill"]["failures"] == 5 and "after 5 attempts" in report.reason
        assert client.stats()["gaps"]["lost"] == 1
    assert backfill_alive()
    wait_until(lambda: client.ready, what="ready again once the gap is settled")


def test_a_rate_limited_history_holds_live_events_only_until_the_deadline(
    make_client: Callable[..., Client], node: WsNode
) -> None:
    """22.3: ``429 Retry-After: 5`` held the live stream 40 s per call (80 minutes at the 600 s cap)
    with ``ready`` True. Now the hold ends at ``gap_deadline``; the gap stays reported, pending,
    and ``ready`` says so while it is fetched in the background."""
    node.history.hostile = lambda method, params: rpc(b"slow down", 429, {"Retry-After": "5"})
    client = open_gap(make_client, node, gap_deadline=1.0)
    signatures = push_live(node, 30)
    assert [e.signature for e in take(client, 30)] == signatures
    (report,) = client.gaps()
    assert report.outcome == "pending" and report.released and report.since_slot == 20
    assert not client.ready  # the gap is not filled: ready says so
    assert client.stats()["gaps"]["released"] == 1 and client.stats()["gaps"]["pending"] == 1
    assert client.stats()["history"]["gaps_released"] == 1  # the counted metric (pumpsync_history_outcomes)


def test_a_history_that_accepts_and_says_nothing_releases_at_the_deadline_then_reports(
    make_client: Callable[..., Client], node: WsNode
) -> None:
    """22.3: a page of 120 forged signatures (each ``getTransaction`` slow, then null) froze the
    live stream 46 s. Here the node holds every ``getTransaction`` until the test lets go: the
    live events flow meanwhile, and the gap is then reported with the loss counted."""
    gate = threading.Event()
    forged = [{"signature": f"FORGED{i}", "slot": 22 + i, "err": None} for i in range(120)]

    def hostile(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
        if method == "getSignaturesForAddress":
            return rpc({"jsonrpc": "2.0", "id": 1, "result": forged[::-1]})
        gate.wait(30)
        return rpc({"jsonrpc": "2.0", "id": 1, "result": None})

    node.history.hostile = hostile
    client = open_gap(make_client, node, gap_deadline=1.0)
    signatures = push_live(node, 10, first_slot=200)
    assert [e.signature for e in take(client, 10)] == signatures
    assert client.gaps()[0].outcome == "pending" and not client.ready
    gate.set()
    report = wait_until(lambda: [g for g in client.gaps() if g.outcome != "pending"], timeout=30, what="the outcome")[0]
    assert report.outcome == "lost" and report.lost == 120 and report.recovered == 0 and report.released
    assert client.stats()["history"]["unavailable"] == 120
    wait_until(lambda: client.ready, what="ready again")


def test_overflow_recovery_fetches_the_oldest_dropped_event_too(
    make_client: Callable[..., Client], node: WsNode
) -> None:
    """22.6: the re-fetch after an overflow asked for what came *after* the first dropped event
    (``until=`` its signature excludes it): one event per overflow episode was lost."""
    client = make_client("solana", node.url, rest_url=f"http://127.0.0.1:{node.history.port}/", queue_size=5)
    client.start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    signatures = push_live(node, 12)  # the consumer stalls: 7 dropped, oldest first
    wait_until(lambda: client.stats()["dropped"] >= 7, what="the overflow")
    got = [e.signature for e in take(client, 12)]
    assert sorted(got) == sorted(signatures), f"missing: {set(signatures) - set(got)}"
    until = [options.get("until") for _, options in node.history.methods("getSignaturesForAddress")]
    assert "L0" not in until  # the first dropped one is fetched, not paged up to


def history(node: Node, **options: Any) -> SolanaHistory:
    config = ClientConfig(
        provider="solana",
        api_key=ApiKey(""),
        url=f"ws://127.0.0.1:{node.port}/",
        backoff_initial=0.01,
        backoff_max=0.05,
    )
    return SolanaHistory(config, **options)


def test_a_cursor_that_never_advances_is_stopped_and_nothing_is_reported_lost_that_was_not() -> None:
    """22.12: a node that ignores ``before`` answered the same page 100 times, and the gap reported
    98,000 lost transactions that never existed."""
    page = [{"signature": f"S{i}", "slot": 100 - i, "err": None} for i in range(10)]
    with running_node() as node:
        node.hostile = lambda method, params: (
            rpc({"jsonrpc": "2.0", "id": 1, "result": page}) if method == "getSignaturesForAddress" else None
        )
        source = history(node, max_transactions=5, page_limit=10)
        try:
            found = source.signatures(Position(0), threading.Event())
        finally:
            source.close()
        assert [s for s, _ in found] == [f"S{i}" for i in range(5)]
        assert len(node.methods("getSignaturesForAddress")) == 2  # the page, and its repeat: stop there
        stats = source.stats()
        assert stats["ceiling"] == 5 and stats["no_progress"] == 1  # the 5 real ones beyond, and the stop


def test_a_flood_of_truncated_logs_keeps_the_refetch_backlog_bounded() -> None:
    """22.12: each truncated-log notification scanned the whole re-fetch backlog (13x the CPU of
    other frames, and the backlog had no bound). Now a repeat is found in O(1), and past the bound
    the loss stays counted where it was seen."""
    config = make_config("solana", url="ws://127.0.0.1:9/", rest_url="http://127.0.0.1:9/")
    stats = ClientStats("solana", config.queue_size, [])
    delivery = Delivery(stats, config.queue_size, config.dedup_size)
    recovery = GapRecovery(
        config, SolanaHistory(config), delivery, stats, lambda: [Subscription(ch) for ch in CHANNELS]
    )
    try:  # the thread is not started: the backlog only grows
        assert recovery.refetch("SIG", 1) and recovery.refetch("SIG", 1)  # asked twice, fetched once
        accepted = sum(recovery.refetch(f"S{i}", i) for i in range(_REFETCH_BACKLOG + 500))
        assert accepted == _REFETCH_BACKLOG - 1
        assert recovery.source_stats()["refetch_overflow"] == 501
    finally:
        recovery.source.close()


def test_both_programs_are_listed_up_to_one_moment() -> None:
    """The pump program's list is taken first, PumpSwap's after it: what came in between (P2, A2)
    must not make PumpSwap's list reach further than the pump program's (A2 released before P2,
    and the next gap starting past P2). One slot read before the first listing cuts both at one
    moment: one listing per program, not repeated rounds (about 16 extra calls a gap on mainnet)."""
    from pumpsync.providers.solana import PUMPSWAP_PROGRAM_ID

    pump = [{"signature": "P1", "slot": 10, "err": None}]
    amm = [{"signature": "A1", "slot": 9, "err": None}]

    def moving(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
        if method == "getSlot":
            return rpc({"jsonrpc": "2.0", "id": 1, "result": 10})  # read first: the chain is at slot 10
        if method != "getSignaturesForAddress":
            return None
        if params[0] == PUMPSWAP_PROGRAM_ID:
            page = list(amm)
        else:
            page = list(pump)
            # while the pump program is listed, the chain moves on (both programs, live meanwhile)
            pump.insert(0, {"signature": "P2", "slot": 11, "err": None})
            amm.insert(0, {"signature": "A2", "slot": 12, "err": None})
        return rpc({"jsonrpc": "2.0", "id": 1, "result": page})

    with running_node() as node:
        node.hostile = moving
        source = history(node, concurrency=1)
        try:
            list(source.fetch({"trades": {}}, Position(5), threading.Event()))
        finally:
            source.close()
        fetched = list(dict.fromkeys(params[0] for params in node.methods("getTransaction")))  # (null: retried)
        assert fetched == ["A1", "P1"]  # in slot order; P2 and A2 are the live stream's
        assert [method for method, _ in node.calls if method != "getTransaction"] == [
            "getSlot",
            "getSignaturesForAddress",
            "getSignaturesForAddress",
        ]
        assert source.stats()["no_cut"] == 0 and source.stats()["after_cut"] == 1


def test_an_item_fetched_again_while_a_gap_holds_keeps_its_place_among_the_held_events(
    make_client: Callable[..., Client], node: WsNode
) -> None:
    """A live frame that must be fetched again (its log cut; a PumpSwap trade whose pool is not
    known yet: the migration is in the gap) while a gap holds the live stream: its events were
    queued after the hold had let out newer held events (or before the gap's older ones), out of
    slot order (the Solana chaos test's flake). Now they are held in their slot's place. The node
    keeps the gap's getTransaction until the cut frame and a newer one are held."""
    asked, gate = threading.Event(), threading.Event()

    def slow_gap(method: str, params: list[Any]) -> tuple[int, dict[str, str], bytes] | None:
        if method == "getTransaction" and params[0] == "B":
            asked.set()
            gate.wait(10)
        return None  # the honest answer

    node.history.hostile = slow_gap
    client = open_gap(make_client, node)  # A (slot 20) seen live, B (21) in the gap
    wait_until(asked.is_set, what="the gap's getTransaction")
    node.push(SIGNATURE, 22, _truncated(real_tx())["meta"]["logMessages"])  # the create; the buy is cut
    node.history.history[-1] = (SIGNATURE, 22, None, real_tx())  # getTransaction: the whole transaction
    node.push("L", 23, trade_logs())
    wait_until(lambda: client.raw_stats.held == 2, what="the cut frame's create and L held")
    gate.set()
    got = [(e.signature, e.kind, e.slot) for e in take(client, 4)]
    assert got == [("B", TRADE, 21), (SIGNATURE, NEW_TOKEN, 22), (SIGNATURE, TRADE, 22), ("L", TRADE, 23)]
    wait_until(lambda: client.ready, what="ready once the gap is settled")
    assert client.queue.empty()
