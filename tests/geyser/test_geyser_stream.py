"""The geyser provider against the simulated Yellowstone server over real gRPC on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

grpc = pytest.importorskip("grpc")

from pumpsync import Client  # noqa: E402
from pumpsync.events import Event  # noqa: E402
from pumpsync.providers.geyser._counts import COUNTS  # noqa: E402
from pumpsync.simulator.geyser import GeyserServer  # noqa: E402
from pumpsync.simulator.simulator import Simulator  # noqa: E402
from tests.conftest import wait_until  # noqa: E402

FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "healthy_after": 0.5}


def _server(sim: Simulator) -> GeyserServer:
    server = sim._server("geyser")
    assert isinstance(server, GeyserServer)
    return server


class Collector:
    """Consumes a client on a thread of its own; every event kept."""

    def __init__(self, client: Client) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, args=(client,), daemon=True)
        self._thread.start()

    def _run(self, client: Client) -> None:
        for event in client:
            with self._lock:
                self.events.append(event)

    def signatures(self) -> set[str]:
        with self._lock:
            return {e.signature for e in self.events if e.signature}

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)


def _expected(sim: Simulator) -> set[str]:
    """Signatures of the market's transactions the client must deliver (launches, curve trades,
    migrations: a PumpSwap trade needs its pool learned first, which may predate the client)."""
    return {r["signature"] for r in sim.history("geyser") if r["kind"] in ("launch", "trade", "migrate")}


def _exactly_once(events: list[Event]) -> None:
    identities = Counter(e.identity for e in events)
    assert [i for i, n in identities.items() if n > 1] == []


def test_events_flow_with_pings_answered() -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.2) as sim:
        server = _server(sim)
        with Client("geyser", **sim.client_options("geyser"), api_key="token-1", **FAST) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 20, what="events")
            wait_until(lambda: server.streams() and server.streams()[0].requests >= 4, what="ping answers")
            assert {e.provider for e in got.snapshot()} == {"geyser"}
            wait_until(lambda: client.ready, what="ready (every channel acknowledged by the pong)")
            assert client.stats()["connections"][0]["malformed"] == {}


def test_exactly_once_across_20_resets_with_replay() -> None:
    before = COUNTS.snapshot()
    with Simulator(["geyser"], rate=40, geyser_ping_interval=0.5) as sim:
        server = _server(sim)
        with Client("geyser", **sim.client_options("geyser"), **FAST) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 5, what="first events")
            for n in range(20):
                connects = client.stats()["connections"][0]["connects"]
                server.fault("reset")
                wait_until(lambda c=connects: client.stats()["connections"][0]["connects"] > c, what=f"reset {n}")
                seen = len(got.snapshot())
                wait_until(lambda s=seen: len(got.snapshot()) > s, what=f"events after reset {n}")
            sim.pause()
            expected = _expected(sim)
            wait_until(lambda: expected <= got.signatures(), what="every transaction delivered")
            _exactly_once(got.snapshot())
    after = COUNTS.snapshot()
    assert after["replays"] - before["replays"] >= 20
    assert after["replayed_slots"] > before["replayed_slots"]  # the overlap came again, and was recognised
    assert after["replays_refused"] == before["replays_refused"]


def test_reset_beyond_replay_window_filled_from_rpc_history() -> None:
    before = COUNTS.snapshot()
    with Simulator(["geyser"], rate=40, geyser_ping_interval=0.5, geyser_replay_slots=2) as sim:  # noqa: SIM117
        with Client("geyser", **sim.client_options("geyser"), **FAST) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 5, what="first events")
            sim.restart("geyser", downtime=3.0)  # the market goes on past the 2-slot replay window
            wait_until(lambda: COUNTS.snapshot()["gaps_filled_rpc"] > before["gaps_filled_rpc"], what="rpc fill")
            sim.pause()
            expected = _expected(sim)
            wait_until(lambda: expected <= got.signatures(), what="every transaction delivered")
            _exactly_once(got.snapshot())
            assert COUNTS.snapshot()["replays_refused"] > before["replays_refused"]
            assert any(gap.outcome == "recovered" for gap in client.gaps())


def test_without_rpc_a_gap_beyond_the_window_is_reported_lost() -> None:
    with Simulator(["geyser"], rate=40, geyser_ping_interval=0.5, geyser_replay_slots=2) as sim:
        options = {"url": sim.url("geyser")}
        with Client("geyser", **options, **FAST, gap_deadline=5.0) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 5, what="first events")
            sim.restart("geyser", downtime=3.0)
            wait_until(lambda: any(g.outcome == "lost" for g in client.gaps()), timeout=60, what="a lost gap")


def _bare_call(port: int, answer_pings: bool, seconds: float) -> tuple[Any, int]:
    """A raw grpcio Subscribe call (the simulator's own writer for the request): the stream's end."""
    from pumpsync.simulator.geyser_wire import write

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    requests: list[bytes] = [write([(3, [(1, "f"), (2, [(3, "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P")])])])]
    outgoing = threading.Condition()

    def stream() -> Any:
        sent = 0
        while True:
            with outgoing:
                outgoing.wait_for(lambda s=sent: len(requests) > s or done.is_set(), timeout=0.5)
                if done.is_set():
                    return
                pending = requests[sent:]
                sent = len(requests)
            yield from pending

    done = threading.Event()
    call = channel.stream_stream("/geyser.Geyser/Subscribe")(stream())
    pings = 0
    deadline = time.monotonic() + seconds
    code = None
    try:
        for message in call:
            if message[2:3] == b"\x32" or b"\x32\x00" in message[-2:]:
                pings += 1
                if answer_pings:
                    with outgoing:
                        requests.append(write([(9, [(1, pings)])]))
                        outgoing.notify_all()
            if time.monotonic() > deadline:
                call.cancel()
    except grpc.RpcError as exc:
        code = exc.code()
    finally:
        done.set()
        channel.close()
    return code, pings


def test_a_load_balancer_cuts_a_silent_client_not_one_that_answers_pings() -> None:
    with Simulator(["geyser"], rate=0, geyser_ping_interval=0.2) as sim:
        server = _server(sim)
        server.idle_timeout = 1.5
        code, _ = _bare_call(server.grpc_port, answer_pings=False, seconds=10)
        assert code == grpc.StatusCode.UNAVAILABLE  # the cut, well before 10 s
        with Client("geyser", url=sim.url("geyser"), **FAST) as client:
            wait_until(lambda: server.streams(), what="a stream")
            stream = server.streams()[0]
            wait_until(lambda: stream.requests >= 15, what="15 requests (ping answers)")  # ~3 s > 1.5 s idle
            assert client.stats()["connections"][0]["connects"] == 1  # never cut


@pytest.mark.parametrize("rpc", [True, False], ids=["with-rpc", "without-rpc"])
def test_an_outage_before_the_first_event(rpc: bool) -> None:
    """Nothing delivered yet (a quiet stream): with an RPC node, the gap is fetched from where the
    chain was when the stream went live; without one, it is reported lost, with the reason."""
    with Simulator(["geyser"], rate=0, geyser_ping_interval=0.5) as sim:
        options = sim.client_options("geyser") if rpc else {"url": sim.url("geyser")}
        with Client("geyser", **options, **FAST) as client:
            got = Collector(client)
            wait_until(lambda: client.ready, what="ready")
            restart = threading.Thread(target=sim.restart, args=("geyser", 1.5))
            restart.start()
            try:
                wait_until(lambda: not sim.connections("geyser"), what="the stream down")
                market = sim.emit(3, kind="trade")
            finally:
                restart.join(30)
            if rpc:
                signatures = {m.signature for m in market}
                wait_until(lambda: signatures <= got.signatures(), timeout=20, what="the outage's trades")
                _exactly_once(got.snapshot())
                wait_until(lambda: client.gaps() and client.gaps()[-1].outcome == "recovered", what="recovered")
            else:
                wait_until(lambda: client.gaps() and client.gaps()[-1].outcome == "lost", what="reported lost")
                assert "no rest_url" in client.gaps()[-1].reason
