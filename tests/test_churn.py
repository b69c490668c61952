"""Runtime subscribe/unsubscribe from two threads while every connection is cut every 20 ms,
under CPU load, for every provider whose SPEC has channels (runtime subscriptions) and a simulator.

The regression test of the lock-order deadlock (issue #22 item 1): ``subscribe()`` took the registry
lock then a connection's, a reconnecting connection the other way round. Asserted: the churning
threads never get stuck, after the last reconnect the server has every subscription the registry
has, and ``close(timeout=2)`` returns with every thread ended. A stuck thread is named with every
thread's stack (``thread_dump``).

``PUMPSYNC_CHURN_SECONDS`` is each provider's churn time (default 2 s, CI's brief run; the issue's
acceptance run is 20 runs of 30 s: ``PUMPSYNC_CHURN_SECONDS=30``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from pumpsync import Client
from pumpsync.providers import PROVIDERS
from pumpsync.providers.spec import ProviderSpec
from pumpsync.simulator import Simulator
from pumpsync.simulator.simulator import SERVERS
from tests.conftest import FAST, thread_dump, wait_until

CHURN_SECONDS = float(os.environ.get("PUMPSYNC_CHURN_SECONDS", "2"))
CUT_EVERY = 0.02  # seconds between two cuts of every connection
# Two valid base58 addresses (32 bytes), one per churning thread, for channels subscribed by keys.
KEYS = ("4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "3JQvkiF2GKfca3ggMPRwTHmzvnj6emReuSFwSrBBonp5")


def _runtime_providers() -> list[str]:
    """Providers with runtime subscriptions (channels in their SPEC) that the simulator serves."""
    return [name for name, spec in PROVIDERS.items() if spec.channels and name in SERVERS]


def _plans(spec: ProviderSpec) -> list[tuple[str, dict[str, Any] | None]]:
    """What each of the two threads churns: one keyed channel with a key each (the PumpPortal bot's
    path) where the provider has one, else two channels that take no filter (non-default first)."""
    for channel in spec.channels:
        if "keys" in spec.filters.get(channel, ()):  # a channel subscribed key by key
            return [(channel, {"keys": [key]}) for key in KEYS]
    plain = sorted(spec.channels, key=lambda c: c in spec.default_channels)
    return [(channel, None) for channel in plain[:2]]


def _server_state(sim: Simulator, provider: str) -> list[set[str]]:
    """What the server has, per open connection: a set of channel names (or ``channel:key``)."""
    if provider == "pumpportal":  # its server keeps per-connection flags, not a subscription list
        server = sim._server(provider)
        out = []
        for state in list(server._states.values()):
            have = {"new_tokens"} if state.new_tokens else set()
            have |= {"migrations"} if state.migrations else set()
            have |= {f"token_trades:{key}" for key in state.mints}
            have |= {f"account_trades:{key}" for key in state.wallets}
            out.append(have)
        return out
    return [{sub.channel for sub in info.subscriptions} for info in sim.connections(provider)]


def _expected(provider: str, client: Client) -> set[str]:
    """The registry in the form of :func:`_server_state`."""
    if provider == "pumpportal":
        return {f"{s.channel}:{key}" for s in client.subscriptions() for key in s.filters.get("keys", [])} | {
            s.channel for s in client.subscriptions() if "keys" not in s.filters
        }
    if provider == "solana":  # one logsSubscribe serves every channel
        return {"logs"} if client.subscriptions() else set()
    if provider == "geyser":  # one transactions filter serves every channel
        return {"transactions"} if client.subscriptions() else set()
    return {s.channel for s in client.subscriptions()}


@pytest.mark.parametrize("provider", _runtime_providers())
def test_runtime_subscriptions_survive_connection_churn(provider: str, cpu_load: None) -> None:
    spec = PROVIDERS[provider]
    plans = _plans(spec)
    options = {f"{provider}_ban_seconds": 0.0} if f"{provider}_ban_seconds" in SERVERS[provider].options else {}
    with Simulator(providers=(provider,), rate=5, seed=3, **options) as sim:
        connections = min(2, spec.max_connections or 2)
        client = Client(provider, url=sim.url(provider), api_key="test-key", connections=connections, **FAST)
        client.start()
        try:
            assert client.wait_connected(15), "never connected"
            _churn(sim, provider, client, plans)
            # After the last cut: every connection reopens and the server has the registry's subscriptions.
            want = _expected(provider, client)
            assert want, "the churn ends subscribed"
            wait_until(
                lambda: (state := _server_state(sim, provider)) and all(have >= want for have in state),
                timeout=20,
                what=f"the server to have {sorted(want)} on every connection (has {_server_state(sim, provider)}; "
                f"client error {client.error!r}, stats {client.stats()['connections']})",
            )
        finally:
            started = time.monotonic()
            client.close(timeout=2)
            closed_in = time.monotonic() - started
        threads = [t for t in threading.enumerate() if t.name.startswith("pumpsync-conn") or "supervisor" in t.name]
        assert closed_in < 2 + 3, f"close(timeout=2) took {closed_in:.1f} s\n{thread_dump()}"
        assert not [t for t in threads if t.is_alive()], f"threads left after close:\n{thread_dump()}"


def _churn(sim: Simulator, provider: str, client: Client, plans: list[tuple[str, dict[str, Any] | None]]) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    rounds = [0, 0]

    def churner(i: int) -> None:
        channel, filters = plans[i]
        try:
            while not stop.is_set():
                client.subscribe(channel, filters)
                client.unsubscribe(channel, filters)
                rounds[i] += 1
            client.subscribe(channel, filters)  # the end state: both subscribed
        except BaseException as exc:
            errors.append(exc)

    def cutter() -> None:
        while not stop.wait(CUT_EVERY):
            sim.drop(provider)

    workers = [threading.Thread(target=churner, args=(i,), name=f"churn-{i}", daemon=True) for i in (0, 1)]
    cut = threading.Thread(target=cutter, name="churn-cutter", daemon=True)
    for thread in [*workers, cut]:
        thread.start()
    time.sleep(CHURN_SECONDS)  # the churn's length, not an assertion
    stop.set()
    cut.join(10)
    for thread in workers:
        thread.join(20)
    stuck = [t.name for t in workers if t.is_alive()]
    assert not stuck, f"stuck in subscribe/unsubscribe: {stuck}\n{thread_dump()}"
    assert not errors, errors
    assert all(rounds), f"a thread never completed a round: {rounds}"
    if not client.connected:
        assert client.error is None, client.error
