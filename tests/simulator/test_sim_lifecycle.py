"""Lifecycle, addresses, inspection helpers and thread hygiene."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import pytest
from simhelpers import ax_connect, op_connect, recv_json

from pumpsync.simulator import Simulator
from pumpsync.simulator._registry import PROVIDERS as SIMULATED

SimFactory = Callable[..., Simulator]


def _free_port_run(count: int) -> int:
    """A port P with P .. P+count-1 all free now: a simulator with an explicit port binds one per provider."""
    for _ in range(50):
        with contextlib.ExitStack() as held:  # all held at once, so none of them is counted twice
            first = held.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port + count > 65536:
                continue
            try:
                for offset in range(1, count):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no run of {count} free ports")


def test_start_stop_without_with_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    sim = Simulator(rate=50.0, seed=4)
    sim.start()
    clients = [op_connect(sim), ax_connect(sim)]
    for ws in clients:
        recv_json(ws)
    sim.wait_for(lambda: sim.history("anaxer"))
    sim.stall(provider="anaxer")  # a stalled client must not slow the shutdown down
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2.0
    # The test's own clients run threads of websockets' (a reader, a keepalive pinger) that end
    # after close() returns, in their own time: the simulator must have none left at once.
    # (websockets 13 has no keepalive thread: getattr)
    threads = (getattr(ws, name, None) for ws in clients for name in ("recv_events_thread", "keepalive_thread"))
    client_threads = {t for t in threads if t is not None}
    assert [t for t in threading.enumerate() if t not in before and t not in client_threads] == []
    for ws in clients:
        ws.close()
    for thread in client_threads:
        thread.join(10.0)
    assert [t for t in threading.enumerate() if t not in before] == []
    sim.stop()  # idempotent
    with pytest.raises(RuntimeError):
        sim.emit()
    assert sim.history("anaxer")  # still readable after stop


def test_urls_and_explicit_port_pair() -> None:
    port = _free_port_run(len(SIMULATED))  # every provider's server, one port each
    with Simulator(port=port, rate=0) as sim:
        assert [sim.port(p) for p in SIMULATED] == list(range(port, port + len(SIMULATED)))
        assert sim.port("openpump") == port and sim.port("anaxer") == port + 1
        assert sim.url("openpump") == f"ws://127.0.0.1:{port}/v1/stream"
        assert sim.url("anaxer") == f"ws://127.0.0.1:{port + 1}/v1/stream"
        assert sim.rest_url("anaxer") == f"http://127.0.0.1:{port + 1}"
        with pytest.raises(ValueError):
            sim.rest_url("openpump")
    with Simulator(providers=("anaxer",), port=port, rate=0) as sim:
        assert sim.port("anaxer") == port
        with pytest.raises(ValueError):
            sim.url("openpump")


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        Simulator(providers=("nonesuch",))
    with pytest.raises(ValueError):
        Simulator(anaxer_form="v2")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Simulator(keys={"k": "platinum"})


def test_connection_info_snapshot_never_shows_the_key(make_sim: SimFactory) -> None:
    sim = make_sim()
    secret = "super-secret-key-123"
    with op_connect(sim, secret) as op, ax_connect(sim, secret, bearer=True) as ax:
        recv_json(op), recv_json(ax)
        ax.send('{"type":"subscribe","id":"a","channel":"prices","filters":{"mints":["x"]}}')
        recv_json(ax)
        infos = sim.connections("openpump") + sim.wait_for_connections("anaxer", 1, subscribed=True)
        for info in infos:
            assert secret not in repr(info)
            assert info.remote[0] == "127.0.0.1" and info.remote[1] > 0
        ax_info = infos[1]
        assert (ax_info.form, ax_info.key_plan) == ("v1", "pro")
        sub = ax_info.subscriptions[0]
        assert (sub.id, sub.channel, sub.filters) == ("a", "prices", {"mints": ["x"]})


def test_wait_helpers_time_out(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    with pytest.raises(TimeoutError):
        sim.wait_for(lambda: False, timeout=0.05)
    with pytest.raises(TimeoutError):
        sim.wait_for_connections("openpump", 1, timeout=0.05)


def test_same_seed_same_feed_contents(make_sim: SimFactory) -> None:
    a, b = make_sim(seed=9), make_sim(seed=9)
    a.emit(40), b.emit(40)

    def strip(records: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            {k: v for k, v in r.items() if k not in ("slot", "timestamp", "timeToGraduateSeconds")} for r in records
        ]

    assert strip(a.history("anaxer")) == strip(b.history("anaxer"))
    assert strip(a.history("openpump", "buy")) == strip(b.history("openpump", "buy"))


def test_rate_drives_the_market_clock(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), rate=40.0)
    started = time.monotonic()
    sim.wait_for(lambda: len(sim.history("anaxer", "creations")) + len(sim.history("anaxer", "trades")) >= 20)
    assert time.monotonic() - started < 3.0


def test_start_failure_releases_what_started() -> None:
    port = _free_port_run(len(SIMULATED))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))  # anaxer's port is busy
        taken.listen()
        sim = Simulator(port=port, rate=0)
        with pytest.raises(OSError):
            sim.start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # openpump's port was released again
