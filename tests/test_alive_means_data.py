"""Alive means data (issue #22 item 4): a node that acks the logs subscription, answers every ping
and sends its slots but no program notification has a dead subscription, and the client must notice.

A hostile Solana node on 127.0.0.1 (websockets' sync server, not pumpsync's simulator): it answers
``logsSubscribe`` and ``slotSubscribe``, pongs, sends a ``slotNotification`` every 50 ms, and sends
logs only when told to. Generic code sees the provider's ``SPEC.data_clock`` and ``Tick`` outputs only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from pumpsync import Client
from pumpsync.metrics import make_registry
from tests.conftest import FAST, wait_until


class SilentNode:
    """Acks every subscription, pongs, ticks slots; sends failed-transaction logs only if ``logs``."""

    def __init__(self, logs: bool) -> None:
        self.logs = logs
        self.sessions = 0
        self._stop = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="silent-node", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._thread.join(5)

    def _handle(self, ws: ServerConnection) -> None:
        self.sessions += 1
        ids: dict[str, int] = {}
        slot = 1000
        try:
            while not self._stop.is_set():
                try:
                    message = ws.recv(timeout=0.05)
                except TimeoutError:
                    message = None
                if message is not None:
                    request = json.loads(message)
                    method = request.get("method")
                    ids[method] = 40 + len(ids)
                    ws.send(json.dumps({"jsonrpc": "2.0", "result": ids[method], "id": request["id"]}))
                slot += 1
                if "slotSubscribe" in ids:
                    tick = {"parent": slot - 1, "root": slot - 32, "slot": slot}
                    params = {"result": tick, "subscription": ids["slotSubscribe"]}
                    ws.send(json.dumps({"jsonrpc": "2.0", "method": "slotNotification", "params": params}))
                if self.logs and "logsSubscribe" in ids:
                    value = {"signature": f"sig{slot}", "err": {"InstructionError": [0, "Custom"]}, "logs": []}
                    result = {"context": {"slot": slot}, "value": value}
                    params = {"result": result, "subscription": ids["logsSubscribe"]}
                    ws.send(json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": params}))
        except ConnectionClosed:
            pass


@pytest.fixture
def node(request: pytest.FixtureRequest) -> Iterator[SilentNode]:
    server = SilentNode(logs=request.param)
    yield server
    server.close()


def _solana(url: str) -> Client:
    options: dict[str, Any] = {**FAST, "stale_timeout": 1.5, "backfill": False}
    return Client("solana", url=url, **options)


@pytest.mark.parametrize("node", [False], indirect=True)
def test_a_subscription_that_sends_nothing_while_slots_advance_is_dead(node: SilentNode) -> None:
    client = _solana(node.url).start()
    try:
        assert client.wait_connected(10)
        conn = client.raw_stats.connections[0]
        wait_until(lambda: conn.disconnects[("no_data", "")] >= 2, timeout=20, what="dead subscriptions detected")
        wait_until(lambda: not client.ready, timeout=10, what="ready to go False")
        assert node.sessions >= 2  # reconnected (and resubscribed) each time
        value = make_registry(client).get_sample_value(
            "pumpsync_disconnects_total", {"provider": "solana", "connection": "0", "reason": "no_data", "code": ""}
        )
        assert value is not None and value >= 2
    finally:
        client.close(timeout=5)


@pytest.mark.parametrize("node", [True], indirect=True)
def test_a_subscription_that_sends_data_stays_up(node: SilentNode) -> None:
    """The control: the same node with notifications (failed transactions: data, though no event)."""
    client = _solana(node.url).start()
    try:
        assert client.wait_connected(10)
        conn = client.raw_stats.connections[0]
        wait_until(lambda: conn.malformed["failed_tx"] >= 60, timeout=20, what="notifications for 3 s")
        assert conn.disconnects[("no_data", "")] == 0
        assert node.sessions == 1
        assert client.ready
    finally:
        client.close(timeout=5)
