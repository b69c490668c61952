"""Several sources disagreeing (issue #22 item 11): the first copy still wins, but copies that
disagree are counted per field and source pair (stats, ``pumpsync_source_conflicts_total``), warned
about once a minute, and ``prefer`` lets one source's disagreeing copy replace a queued one.

Two Anaxer servers on 127.0.0.1 (document form, websockets' sync server; not pumpsync's simulator):
one honest, one that sends the same trade with 1000 SOL. The trade itself is the simulator's.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from pumpsync import Client, Source
from pumpsync.metrics import make_registry
from pumpsync.simulator import Simulator
from tests.conftest import wait_until


class AnaxerFeed:
    """Anaxer's document form: greets, acks subscriptions, pings, and sends what it is given."""

    def __init__(self) -> None:
        self._clients: list[ServerConnection] = []
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="anaxer-feed", daemon=True)
        self._thread.start()

    def push(self, obj: dict[str, Any]) -> None:
        assert self._subscribed.wait(10), "no client subscribed"
        for ws in list(self._clients):
            ws.send(json.dumps(obj))

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._thread.join(5)

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "connected"}))
        self._clients.append(ws)
        next_ping = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_ping:
                    ws.send('{"type":"ping"}')
                    next_ping = time.monotonic() + 0.5
                try:
                    message = json.loads(ws.recv(timeout=0.05))
                except TimeoutError:
                    continue
                if isinstance(message, dict) and "subscribe" in message:
                    ws.send(json.dumps({"type": "subscribed", "channel": message["subscribe"]}))
                    self._subscribed.set()
        except ConnectionClosed:
            pass
        finally:
            self._clients.remove(ws)


@pytest.fixture(scope="module")
def trades() -> list[dict[str, Any]]:
    """Real trades as the simulator's Anaxer sends them (document form)."""
    with Simulator(providers=("anaxer",), rate=0, seed=5, anaxer_form="document") as sim:
        sim.emit(6, kind="trade")
        wait_until(lambda: len(sim.history("anaxer")) >= 6, what="the simulator's trades")
        return [t for t in sim.history("anaxer") if t.get("type") == "swap"]


def _lie(trade: dict[str, Any]) -> dict[str, Any]:
    lie = copy.deepcopy(trade)
    lie["solAmount"] = 1000.0
    lie["swap"]["from"].update(amount="1000000000000", uiAmount=1000.0)
    return lie


@pytest.fixture
def feeds() -> Iterator[tuple[AnaxerFeed, AnaxerFeed]]:
    liar, honest = AnaxerFeed(), AnaxerFeed()
    yield liar, honest
    liar.close()
    honest.close()


def _client(liar: AnaxerFeed, honest: AnaxerFeed, **options: Any) -> Client:
    sources = [
        Source("anaxer", name="liar", url=liar.url, api_key="key-1", channels=["trades"]),
        Source("anaxer", name="honest", url=honest.url, api_key="key-2", channels=["trades"]),
    ]
    client = Client(sources=sources, hello_timeout=0.5, **options).start()
    wait_until(lambda: all(m.ready for m in client.members.values()), what="both sources ready")
    return client


def _conflicts(client: Client) -> dict[str, Any]:
    return client.stats()["race"]["conflicts"]  # type: ignore[no-any-return]


def test_first_wins_and_the_disagreement_is_counted_and_warned_once(
    feeds: tuple[AnaxerFeed, AnaxerFeed], trades: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    liar, honest = feeds
    client = _client(liar, honest)
    try:
        for trade in trades[:2]:
            liar.push(_lie(trade))
            first = client.get(timeout=10)
            assert first.sol_amount == 1000.0  # first wins: an event already delivered cannot be recalled
            honest.push(trade)
            wait_until(lambda: client.raw_stats.duplicates >= 1, what="the honest copy")
        wait_until(
            lambda: _conflicts(client).get("liar>honest", {}).get("sol_amount") == 2, what="two conflicts counted"
        )
        with caplog.at_level(logging.WARNING, logger="pumpsync"), pytest.raises(queue.Empty):
            client.get(timeout=0.2)  # the honest copies are duplicates: nothing more is delivered
        warnings = [r for r in caplog.records if "sources disagree" in r.getMessage()]
        assert len(warnings) == 1 and "sol_amount" in warnings[0].getMessage()  # rate-limited: one a minute
        value = make_registry(client).get_sample_value(
            "pumpsync_source_conflicts_total", {"field": "sol_amount", "first": "liar", "second": "honest"}
        )
        assert value == 2
        assert _conflicts(client)["liar>honest"].get("slot") is None  # the other fields agreed
    finally:
        client.close(timeout=5)


def test_a_preferred_source_replaces_a_queued_disagreeing_copy(
    feeds: tuple[AnaxerFeed, AnaxerFeed], trades: list[dict[str, Any]]
) -> None:
    liar, honest = feeds
    client = _client(liar, honest, prefer={"trade": "honest"})
    try:
        trade = trades[0]
        liar.push(_lie(trade))
        wait_until(lambda: client.queue.qsize() == 1, what="the lie queued")
        honest.push(trade)
        wait_until(lambda: _conflicts(client).get("liar>honest"), what="the conflict counted")
        got = client.get(timeout=5)
        assert got.sol_amount == pytest.approx(trade["solAmount"])
        assert client.stats()["conflicts_replaced"] == 1
        # Taken already: the preferred copy that comes later cannot recall it, and is not delivered twice.
        liar.push(_lie(trades[1]))
        assert client.get(timeout=5).sol_amount == 1000.0
        honest.push(trades[1])
        wait_until(lambda: _conflicts(client)["liar>honest"]["sol_amount"] == 2, what="the second conflict")
        with pytest.raises(queue.Empty):
            client.get(timeout=0.2)
    finally:
        client.close(timeout=5)


def test_prefer_names_a_kind_and_a_source() -> None:
    from pumpsync.errors import ConfigurationError

    sources = [Source("anaxer", api_key="a"), Source("anaxer", api_key="b")]
    with pytest.raises(ConfigurationError, match="prefer"):
        Client(sources=sources, prefer={"trade": "nobody"})
    with pytest.raises(ConfigurationError, match="prefer"):
        Client(sources=sources, prefer={"trades": "anaxer"})
    with pytest.raises(ConfigurationError, match="prefer"):
        Client("anaxer", api_key="a", prefer={"trade": "anaxer"})
