"""Fidelity: the provider's own SDK (anaxer 0.1.1) works against the simulator unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pumpsync.simulator import Simulator

# The SDK pins websockets<14, so it is not in the test extra (the main suite runs on the newest
# websockets): CI installs 'pumpsync[test,fidelity]' in a venv of its own and runs this file there.
anaxer = pytest.importorskip(
    "anaxer",
    reason="the anaxer SDK is not installed (pip install 'pumpsync[fidelity]'; .ci/run runs it in its own venv)",
)
from anaxer.models import CreatedV1, PriceUpdateV1, SwapV1  # noqa: E402

SimFactory = Callable[..., Simulator]


def run(coro: Any, timeout: float = 15.0) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_sdk_streams_v1_and_reads_rest_pages(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    errors: list[anaxer.AnaxerError] = []

    async def scenario() -> None:
        async with anaxer.connect("YOUR_KEY", base_url=sim.rest_url("anaxer")) as client:
            client.on_error(errors.append)
            assert client.connected.connections_per_stream == 5
            trades = client.stream("trades", sources=["pumpfun"])
            creations = client.stream("creations")
            prices = client.stream("prices")
            await asyncio.to_thread(sim.wait_for_connections, "anaxer", 1, True)
            await asyncio.to_thread(sim.wait_for, lambda: len(sim.connections("anaxer")[0].subscriptions) == 3)
            events = await asyncio.to_thread(sim.emit, 10, "trade")
            created = await creations.__anext__()
            assert isinstance(created, CreatedV1) and created.mint == events[0].mint
            swaps = [await trades.__anext__() for _ in range(5)]
            assert all(isinstance(s, SwapV1) for s in swaps)
            assert [s.signature for s in swaps] == [r["signature"] for r in sim.history("anaxer", "trades")[:5]]
            assert isinstance(await prices.__anext__(), PriceUpdateV1)

            page = await client.creations(limit=1)
            assert page.data[0].mint == created.mint and page.window.from_ == created.slot
            await asyncio.to_thread(sim.emit, 5, "launch")
            items = [c async for c in client.iter_creations(limit=2)]
            assert [c.signature for c in items] == [r["signature"] for r in sim.history("anaxer", "creations")]
            token_trades = await client.tokens.trades(created.mint or "", limit=3)
            assert all(t.swap.to.mint == created.mint or t.swap.from_.mint == created.mint for t in token_trades.data)

    run(scenario())
    assert errors == []


def test_sdk_reconnects_and_resubscribes_after_a_drop(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))

    async def scenario() -> None:
        async with anaxer.connect("k", base_url=sim.rest_url("anaxer")) as client:
            creations = client.stream("creations")
            await asyncio.to_thread(sim.wait_for_connections, "anaxer", 1, True)
            await asyncio.to_thread(sim.drop)
            info = await asyncio.to_thread(sim.wait_for_connections, "anaxer", 1, True, 10.0)
            assert info[0].index == 1  # a new connection, subscribed again by the SDK
            launch = (await asyncio.to_thread(sim.emit, 1, "launch"))[0]
            assert (await creations.__anext__()).mint == launch.mint

    run(scenario())


def test_sdk_treats_invalid_key_as_terminal(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))

    async def scenario() -> None:
        with pytest.raises(anaxer.AnaxerError) as info:
            async with anaxer.connect("sim-invalid", base_url=sim.rest_url("anaxer")):
                pass
        assert info.value.code == "unauthorized"

    run(scenario())


def test_sync_rest_client_pages_and_retries_429(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    sim.emit(2, "graduation")
    sim.emit(12, "launch")
    with anaxer.Client("k", base_url=sim.rest_url("anaxer")) as client:
        sim.rest_fail_next(1, retry_after=0.1)  # the SDK honours Retry-After and retries
        assert [c.signature for c in client.iter_creations(limit=4)] == [
            r["signature"] for r in sim.history("anaxer", "creations")
        ]
        assert [g.mint for g in client.iter_graduations()] == [r["mint"] for r in sim.history("anaxer", "graduations")]
    with anaxer.Client("sim-invalid", base_url=sim.rest_url("anaxer")) as bad:
        with pytest.raises(anaxer.AnaxerError) as info:
            bad.creations()
        assert (info.value.code, info.value.status) == ("unauthorized", 401)
