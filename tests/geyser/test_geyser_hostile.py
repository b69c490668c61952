"""A hostile or broken Geyser server: each fault is counted and survived, never the session's end
unless the protocol says so; nothing is lost silently."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc")

from pumpsync import Client
from pumpsync.providers.geyser._counts import COUNTS
from pumpsync.simulator.geyser import GeyserServer
from pumpsync.simulator.simulator import Simulator
from tests.conftest import wait_until
from tests.geyser.test_geyser_stream import FAST, Collector


def _server(sim: Simulator) -> GeyserServer:
    server = sim._server("geyser")
    assert isinstance(server, GeyserServer)
    return server


def _disconnects(client: Client) -> dict[str, int]:
    return dict(client.stats()["connections"][0]["disconnects"])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("reset", "grpc_error"), ("unavailable", "unavailable"), ("exhausted", "rate_limited")],
)
def test_a_status_ends_the_session_and_the_stream_comes_back(fault: str, reason: str) -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        with Client("geyser", url=sim.url("geyser"), **FAST, limited_backoff=0.2) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events")
            server.fault(fault)
            wait_until(lambda: reason in _disconnects(client), what=f"{reason} counted")
            seen = len(got.snapshot())
            wait_until(lambda: len(got.snapshot()) > seen, what="events again")


def test_refused_at_the_call_unavailable_then_served() -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        server.grpc_rejects.extend([("UNAVAILABLE", "overloaded")] * 3)
        with Client("geyser", url=sim.url("geyser"), **FAST) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events after three refusals")
            assert _disconnects(client)["unavailable"] >= 3


def test_an_oversized_message_is_counted_and_the_stream_resumes_past_it() -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        with Client("geyser", **sim.client_options("geyser"), **FAST, max_frame_size=256 * 1024) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events")
            server.fault("oversized", size=1024 * 1024)
            wait_until(lambda: client.stats()["connections"][0]["malformed"].get("oversized"), what="counted")
            seen = len(got.snapshot())
            wait_until(lambda: len(got.snapshot()) > seen, what="events again")
            assert "oversized" in _disconnects(client)


def test_a_silent_stream_is_reconnected_after_the_stale_timeout() -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        with Client("geyser", url=sim.url("geyser"), **FAST, stale_timeout=1.5, pong_timeout=1.0) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events")
            server.fault("silent")  # nothing more, not even pings: the socket stays open
            wait_until(lambda: client.stats()["connections"][0]["connects"] >= 2, what="a new session")
            seen = len(got.snapshot())
            wait_until(lambda: len(got.snapshot()) > seen, what="events again")


def test_garbage_messages_are_counted_one_each() -> None:
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        with Client("geyser", url=sim.url("geyser"), **FAST) as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events")
            for stream in server.streams():
                for garbage in (b"\x00\x01", b"\x22\xff\xff\xff\x0f", b"\x22" + b"\xff" * 12, b"\x23"):
                    stream.out.put(garbage)
            wait_until(lambda: sum(client.stats()["connections"][0]["malformed"].values()) >= 4, what="4 counted")
            seen = len(got.snapshot())
            wait_until(lambda: len(got.snapshot()) > seen, what="events go on")
            assert client.stats()["connections"][0]["connects"] == 1  # the same session


def test_a_dead_slot_drops_what_it_carried_at_processed() -> None:
    before = COUNTS.snapshot()
    with Simulator(["geyser"], rate=30, geyser_ping_interval=0.3) as sim:
        server = _server(sim)
        with Client("geyser", url=sim.url("geyser"), **FAST, commitment="processed") as client:
            got = Collector(client)
            wait_until(lambda: len(got.snapshot()) >= 3, what="events")
            server.fault("dead_slot")
            wait_until(lambda: COUNTS.snapshot()["dead_slots"] > before["dead_slots"], what="a dead slot dropped")
            dead = server._dead
            wait_until(lambda: client.stats()["connections"][0]["filtered"].get("dead_slot"), what="counted")
            assert not [e for e in got.snapshot() if e.slot in dead]
