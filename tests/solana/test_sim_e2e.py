"""``solana`` through ``pumpsync.Client`` against the simulator's Solana node.

The node's Borsh encoder (``pumpsync/simulator``) and the client's decoder (``providers/_borsh``)
were written apart and share no code: agreement here is evidence, not a tautology.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import pumpsync.simulator.solana  # noqa: F401 - the Solana node these tests drive: an import break fails them
from pumpsync import Client
from pumpsync.errors import AuthenticationError
from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, TRADE, Event
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.solana.rpcstub import take


def solana(make_client: Callable[..., Client], sim: Simulator, **options: Any) -> Client:
    options.setdefault("rest_url", sim.rest_url("solana"))
    client = make_client("solana", sim.url("solana"), api_key=None, **options)
    client.start()
    sim.wait_for_connections("solana", 1, subscribed=True)
    return client


def expected_kind(market: Any) -> str:
    return {"launch": NEW_TOKEN, "trade": TRADE, "graduation": MIGRATION}[market.kind]


def expected(market: list[Any]) -> set[tuple[str, str]]:
    """(signature, kind) of every event the market's transactions carry. A graduation is two on
    chain: CompleteEvent (``graduation``) in the trade that fills the curve, then the migration's
    own transaction (``migration``)."""
    keys = {(item.signature, expected_kind(item)) for item in market}
    for i, item in enumerate(market):
        if item.kind == "graduation":
            filler = next(m for m in reversed(market[:i]) if m.kind == "trade" and m.mint == item.mint)
            keys.add((filler.signature, GRADUATION))
    return keys


def check(event: Event, market: Any) -> None:
    """A delivered event against the market event the node encoded."""
    assert event.kind == expected_kind(market) and event.provider == "solana"
    assert event.signature == market.signature and event.slot == market.slot
    assert event.timestamp == market.timestamp // 1000 * 1000  # on-chain seconds
    if market.kind == "launch":
        token = market.token
        assert (event.mint, event.name, event.symbol) == (token.mint, token.name, token.symbol)
        assert (event.creator, event.uri) == (token.creator, token.uri)
        assert event.raw["virtual_sol_reserves"] == 30_000_000_000  # a new curve (the market's is after the first buy)
    elif market.kind == "trade" and market.venue == "pumpswap":
        assert (event.mint, event.trader, event.side, event.venue) == (
            market.mint,
            market.trader,
            market.side,
            "pumpswap",
        )
        assert event.sol_amount == market.sol_lamports / 1e9 and event.token_amount == market.token_raw / 1e6
        assert event.raw["pool_quote_token_reserves"] == market.curve.virtual_sol  # the pool before the trade
        assert event.price_sol == market.curve.price_sol
    elif market.kind == "trade":
        assert (event.mint, event.trader, event.side) == (market.mint, market.trader, market.side)
        assert event.venue == "curve"
        # A curve-completing buy_v3: the TradeEvent's part and the PostCompleteBuyEvent's add up to the trade.
        post = event.raw.get("post_complete_buy", {"quote_in": 0, "base_out": 0})
        assert event.raw["sol_amount"] + post["quote_in"] == market.sol_lamports
        assert event.raw["token_amount"] + post["base_out"] == market.token_raw
        assert event.sol_amount == market.sol_lamports / 1e9 and event.token_amount == market.token_raw / 1e6
        assert event.raw["virtual_sol_reserves"] == market.curve.virtual_sol
        assert event.raw["virtual_token_reserves"] == market.curve.virtual_tokens
    else:
        assert event.mint == market.mint


def test_the_market_decodes_exactly(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim)
    market = sim.emit(60) + sim.emit(2, kind="graduation")
    events = take(client, len(expected(market)))
    by_key = {(e.signature, e.kind): e for e in events}
    assert set(by_key) == expected(market)
    for item in market:
        check(by_key[(item.signature, expected_kind(item))], item)
    completes = [e for e in events if e.kind == GRADUATION and e.raw["event"] == "CompleteEvent"]
    migrations = [e for e in events if e.kind == MIGRATION and e.raw["event"] == "CompletePumpAmmMigrationEvent"]
    graduations = sum(1 for item in market if item.kind == "graduation")
    assert len(completes) == len(migrations) == graduations >= 2 and all(e.liquidity_sol for e in migrations)
    # every graduation came with a buy_v3 whose second part the pool filled: joined, none left apart
    joined = [e for e in events if e.kind == "trade" and "post_complete_buy" in e.raw]
    assert len(joined) == sum(1 for e in completes if by_key[(e.signature, "trade")].side == "buy") >= 1
    assert all(e.raw["ix_name"] == "buy_v3" for e in joined)


def test_the_october_2026_events_end_to_end(make_client: Callable[..., Client], sim: Simulator) -> None:
    """Holder-reward coins (their developer as the creator), fee payouts (sweeps) counted apart,
    and the same through gap recovery's getTransaction (live and history agree)."""
    client = solana(make_client, sim)
    market = sim.emit(120) + sim.emit(2, kind="graduation")
    events = take(client, len(expected(market)))
    launches = {e.mint: e for e in events if e.kind == "new_token"}
    rewarded = [e for e in launches.values() if e.raw["is_holder_reward"]]
    assert rewarded and all(e.creator == e.raw["user"] != e.raw["creator"] for e in rewarded)
    for item in market:
        if item.kind == "launch" and item.token.mint in launches:
            assert launches[item.token.mint].creator == item.token.creator  # the developer, either way
    trades = [e for e in events if e.kind == "trade" and e.venue == "curve" and e.mint in {m.mint for m in rewarded}]
    assert trades and all(e.raw["holder_rewards_bps"] == 10 for e in trades)
    filtered = client.stats()["connections"][0]["filtered"]
    assert filtered.get("fee_payout", 0) >= 1  # sweeps: neither trades nor unknown
    assert not client.stats()["connections"][0]["malformed"]
    # the history path decodes the very same transactions to the same events
    from pumpsync.providers.solana_history import SolanaHistory

    history = SolanaHistory(client.config)
    try:
        stop = threading.Event()
        for event in events:
            again = history.refetch(
                event.signature, event.slot, {c: {} for c in ("creations", "trades", "graduations")}, stop
            )
            match = [e for e in again if e.kind == event.kind]
            assert match and match[0].sol_amount == event.sol_amount and match[0].creator == event.creator
    finally:
        history.close()


@pytest.mark.parametrize("layout", ["extended", "legacy"])
def test_layouts_of_other_program_versions(make_client: Callable[..., Client], sim: Simulator, layout: str) -> None:
    """The next upgrade's longer events and the older, shorter ones: the same normalized events."""
    client = solana(make_client, sim)
    sim.solana_layout(layout)  # type: ignore[arg-type]
    market = sim.emit(20, kind="trade") + sim.emit(3, kind="launch")
    events = take(client, len(expected(market)))
    assert {(e.signature, e.kind) for e in events} == expected(market)
    by_key = {(e.signature, e.kind): e for e in events}
    for item in market:
        event = by_key[(item.signature, expected_kind(item))]
        assert event.mint == _mint(item)
        if item.kind == "trade" and item.venue == "pumpswap":  # PumpSwap's layout: not the curve's versions
            assert event.token_amount == item.token_raw / 1e6 and event.side == item.side
        elif item.kind == "trade":
            assert event.raw["sol_amount"] == item.sol_lamports and event.side == item.side
            assert event.raw["token_amount"] == item.token_raw and event.trader == item.trader


def _mint(item: Any) -> str:
    return str(item.token.mint if item.kind == "launch" else item.mint)


def test_injected_failures_are_counted_not_delivered(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim, backfill=False)  # no getTransaction: the truncated log stays a loss
    sim.solana_inject("failed", 2)
    sim.solana_inject("unknown_event", 1)
    sim.solana_inject("undecodable", 1)
    sim.solana_next("truncated", 1)
    market = sim.emit(3, kind="trade")
    truncated = market[0].signature  # its log lost every Program data line: counted (recovered: test_integration.py)
    events = take(client, len({key for key in expected(market) if key[0] != truncated}))
    assert all(e.signature != truncated for e in events)
    stats = client.stats()["connections"][0]
    malformed = stats["malformed"]
    assert malformed["failed_tx"] == 2 and malformed["undecodable"] >= 1 and malformed["log_truncated"] == 1
    # The node's "unknown event" is an IDL event pumpsync does not map: left out on purpose.
    assert stats["filtered"]["unmapped_event"] >= 1


def test_frames_over_one_mebibyte(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim)
    sim.solana_next("oversized", 1, size=3 * 1024 * 1024)
    market = sim.emit(1, kind="trade")
    events = take(client, len(expected(market)))
    assert events[0].signature == market[0].signature


def test_gaps_recovered_exactly_once_in_order(make_client: Callable[..., Client], sim: Simulator) -> None:
    client = solana(make_client, sim)
    market = list(sim.emit(5))
    for _ in range(4):
        sim.rest_fail_next(1, 429, retry_after=0.0, provider="solana")
        sim.drop("solana")
        market += sim.emit(8)  # while the client reconnects: live or recovered, never both
        sim.wait_for_connections("solana", 1, subscribed=True)
        market += sim.emit(2)
    got: list[Event] = []
    wanted = expected(market)

    def all_in() -> bool:
        while not client.queue.empty():
            item = client.queue.get_nowait()
            assert isinstance(item, Event), item
            got.append(item)
        return len(got) >= len(wanted)

    wait_until(all_in, timeout=30, what="every event")
    assert sorted((e.signature, e.kind) for e in got) == sorted(wanted)  # each exactly once
    # Slot order: what a node gives across its two subscriptions (README "Delivery guarantees"), not block order.
    assert [e.slot for e in got] == sorted(e.slot or 0 for e in got), [
        (e.slot, e.kind, e.venue, e.backfill, (e.signature or "")[:6]) for e in got
    ]
    assert any(e.backfill for e in got)


def test_a_gap_lists_each_program_once_up_to_one_slot(make_client: Callable[..., Client], sim: Simulator) -> None:
    """Both programs busy during the gap (curve and PumpSwap trades): one getSlot (the cut), then one
    listing of each program (and the rest of the last slot seen), never repeated rounds."""
    client = solana(make_client, sim)
    market = list(sim.emit(6)) + sim.emit(2, kind="graduation")
    take(client, len(expected(market)))
    before = sim.solana_rpc_calls()
    sim.drop("solana")
    gap = sim.emit(20)  # while the client reconnects
    sim.wait_for_connections("solana", 1, subscribed=True)
    assert any(item.kind == "trade" and item.venue == "pumpswap" for item in gap)
    wait_until(lambda: any(g.outcome != "pending" for g in client.gaps()), what="the gap's outcome")
    calls = {m: n - before.get(m, 0) for m, n in sim.solana_rpc_calls().items()}
    assert calls["getSlot"] == 1
    assert calls["getSignaturesForAddress"] <= 3  # the program, the rest of its last slot, PumpSwap


def test_rate_limited_and_muted_subscriptions_retry(make_client: Callable[..., Client], sim: Simulator) -> None:
    sim.solana_subscribe_errors(1, 429, "Too many requests")
    client = solana(make_client, sim)
    sim.drop("solana")
    sim.solana_mute_subscribe(True)
    wait_until(lambda: sim.solana_subscribe_requests() >= 3, what="the muted subscription")
    # (each session subscribes twice: the program, then PumpSwap; the muted one ends its session)
    wait_until(lambda: client.stats()["connections"][0]["disconnects"].get("hello_timeout", 0) >= 1)
    sim.solana_mute_subscribe(False)
    sim.wait_for_connections("solana", 1, subscribed=True)
    market = sim.emit(1, kind="trade")
    assert take(client, len(expected(market)))[0].signature == market[0].signature
    disconnects = client.stats()["connections"][0]["disconnects"]
    assert disconnects.get("rate_limited", 0) >= 1


def test_refused_key_over_json_rpc_is_fatal(make_client: Callable[..., Client], sim: Simulator) -> None:
    sim.solana_subscribe_errors(1, -32401, "Invalid API key")
    client = make_client("solana", sim.url("solana"), api_key=None)
    client.start()
    item = client.queue.get(timeout=10)
    assert isinstance(item, AuthenticationError) and "Invalid API key" in str(item)


def test_a_token_followed_by_mint_from_launch_to_pumpswap(make_client: Callable[..., Client], sim: Simulator) -> None:
    """Launch, curve trades, graduation, migration, then PumpSwap pool trades: one mint, no gap."""
    client = solana(make_client, sim)
    market = sim.emit(1, kind="graduation")
    grad = next(m for m in market if m.kind == "graduation")
    for _ in range(50):  # the market trades a graduated token on its pool now and then
        if any(m.kind == "trade" and m.venue == "pumpswap" and m.mint == grad.mint for m in market):
            break
        market += sim.emit(10, kind="trade")
    events = take(client, len(expected(market)))
    by_key = {(e.signature, e.kind): e for e in events}
    assert set(by_key) == expected(market)
    for item in market:
        check(by_key[(item.signature, expected_kind(item))], item)
    life = [e for e in events if e.mint == grad.mint]
    kinds = [(e.kind, e.venue) for e in life]
    assert kinds[0] == (NEW_TOKEN, None) and (GRADUATION, None) in kinds and (MIGRATION, None) in kinds
    migrated = kinds.index((MIGRATION, None))
    assert all(venue == "curve" for kind, venue in kinds[:migrated] if kind == TRADE)
    assert kinds[migrated + 1 :] and all(k == (TRADE, "pumpswap") for k in kinds[migrated + 1 :])
