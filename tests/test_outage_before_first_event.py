"""An outage before the first event: nothing was delivered, so there is no newest position to
start the gap from. A quiet, filtered subscription can stay so for hours; an outage then must not
lose its events without a word. Solana: the gap starts where the chain was when the stream went
live (``getSlot``), and is recovered. Anaxer (its REST lists are addressed by their events' slots
only): the gap is reported lost, with the reason, and counted."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pumpsync import Client
from pumpsync.events import Event
from pumpsync.simulator import Simulator
from tests.conftest import wait_until


def _outage(sim: Simulator, provider: str, during: Callable[[], Any]) -> Any:
    """Every connection of ``provider`` dropped and refused for a while; ``during()`` runs once
    none is open. Returns what it returned."""
    restart = threading.Thread(target=sim.restart, args=(provider, 1.5))
    restart.start()
    try:
        wait_until(lambda: not sim.connections(provider), timeout=10, what="every connection dropped")
        return during()
    finally:
        restart.join(30)


def _events(client: Client, n: int, timeout: float = 20) -> list[Event]:
    out: list[Event] = []
    for _ in range(n):
        item = client.queue.get(timeout=timeout)
        assert isinstance(item, Event), item
        out.append(item)
    return out


def test_solana_recovers_an_outage_before_the_first_event(make_client: Callable[..., Client]) -> None:
    with Simulator(providers=("solana",), rate=0, seed=31) as sim:
        client = make_client("solana", sim.url("solana"), api_key=None, rest_url=sim.rest_url("solana"))
        client.start()
        sim.wait_for_connections("solana", 1, subscribed=True)
        # Nothing delivered yet; the market moves while the stream is down.
        market = _outage(sim, "solana", lambda: sim.emit(3, kind="trade"))
        sim.wait_for_connections("solana", 1, subscribed=True)
        signatures = {item.signature for item in market}
        events = _events(client, len(market))
        assert {e.signature for e in events} == signatures
        assert all(e.backfill for e in events)
        wait_until(lambda: client.gaps() and client.gaps()[-1].outcome == "recovered", timeout=10, what="gap recovered")
        report = client.gaps()[-1]
        assert report.since_slot is not None and report.since_slot <= min(item.slot for item in market)


def test_anaxer_reports_an_outage_before_the_first_event_lost(
    make_client: Callable[..., Client], sim: Simulator
) -> None:
    client = make_client("anaxer", sim.url("anaxer"), rest_url=sim.rest_url("anaxer"), channels=["trades"])
    client.start()
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    _outage(sim, "anaxer", lambda: sim.emit(3, kind="trade"))
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    wait_until(lambda: client.gaps() and client.gaps()[-1].outcome == "lost", timeout=15, what="the gap reported lost")
    report = client.gaps()[-1]
    assert report.since_slot is None and "nothing had arrived before the outage" in report.reason
    assert client.history_stats()["gaps_lost"] == 1
    # The stream goes on: the next event arrives, and the next outage (now with a position) is recovered.
    first = sim.emit(1, kind="trade")
    assert _events(client, 1)[0].signature == first[0].signature
    market = _outage(sim, "anaxer", lambda: sim.emit(2, kind="trade"))
    sim.wait_for_connections("anaxer", 1, subscribed=True)
    assert {e.signature for e in _events(client, len(market))} == {item.signature for item in market}
    wait_until(lambda: client.gaps()[-1].outcome == "recovered", timeout=10, what="the second gap recovered")


class _Refusing(BaseHTTPRequestHandler):
    """A history node that refuses every call (403), getSlot included."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_node_that_refuses_the_current_slot_makes_such_a_gap_lost_with_the_reason(
    make_client: Callable[..., Client],
) -> None:
    """The history node refuses getSlot when the stream goes live: the outage before the first event
    cannot be placed, so it is reported lost with the node's answer, never recovered from a made-up slot."""
    node = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=node.serve_forever, daemon=True).start()
    try:
        with Simulator(providers=("solana",), rate=0, seed=31) as sim:
            rest_url = f"http://127.0.0.1:{node.server_address[1]}"
            client = make_client("solana", sim.url("solana"), api_key=None, rest_url=rest_url)
            client.start()
            sim.wait_for_connections("solana", 1, subscribed=True)
            _outage(sim, "solana", lambda: sim.emit(2, kind="trade"))
            sim.wait_for_connections("solana", 1, subscribed=True)
            wait_until(lambda: client.gaps() and client.gaps()[-1].outcome == "lost", timeout=15, what="lost")
            report = client.gaps()[-1]
            assert report.since_slot is None and "HTTP 403" in report.reason
            assert client.history_stats()["gaps_lost"] == 1
    finally:
        node.shutdown()
        node.server_close()
