"""Every fault-injection method, observed from a real client socket."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import pytest
import requests
from simhelpers import assert_silent, ax_connect, expect_close, op_connect, recv_json, recv_until
from websockets.exceptions import InvalidStatus

from pumpsync.simulator import Simulator

SimFactory = Callable[..., Simulator]


def test_drop_aborts_without_close_frame(make_sim: SimFactory) -> None:
    sim = make_sim()
    with op_connect(sim) as op, ax_connect(sim) as ax:
        recv_json(op), recv_json(ax)
        assert sim.drop() == 2
        assert expect_close(op) == (None, "")
        assert expect_close(ax) == (None, "")
    sim.wait_for(lambda: not sim.connections("openpump") and not sim.connections("anaxer"))


def test_close_with_code_selects_by_provider_and_index(make_sim: SimFactory) -> None:
    sim = make_sim()
    with op_connect(sim) as first, op_connect(sim) as second, ax_connect(sim) as ax:
        recv_json(first), recv_json(second), recv_json(ax)
        target = sim.wait_for_connections("openpump", 2)[1].index
        assert sim.close(1011, "server error", provider="openpump", index=target) == 1
        assert expect_close(second) == (1011, "server error")
        assert sim.close(4000, provider="anaxer", index=999) == 0
        first.send(json.dumps({"type": "ping"}))
        assert recv_json(first)["type"] == "pong"
        with pytest.raises(ValueError):
            sim.close(1006)


def test_stall_is_silent_half_open_until_unstalled(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",), enrich_delay=0.0)
    with op_connect(sim) as stalled, op_connect(sim) as healthy:
        recv_json(stalled), recv_json(healthy)
        index = sim.wait_for_connections("openpump", 2)[0].index
        assert sim.stall(index=index) == 1
        assert [c.stalled for c in sim.connections("openpump")] == [True, False]
        stalled.ping()  # protocol-level ping: no pong while stalled either
        stalled.send(json.dumps({"type": "ping"}))
        sim.emit(5)
        recv_until(healthy, lambda m: m["type"] == "new_token")
        assert_silent(stalled, 0.3)  # no events, no pong, and no close: the socket stays open
        assert sim.unstall(index=index) == 1
        sim.emit(1, "launch")
        launch_mint = sim.history("openpump", "new_token")[-1]["mint"]
        assert recv_until(stalled, lambda m: m.get("mint") == launch_mint)["type"] == "new_token"


def test_stall_stops_anaxer_heartbeat_without_closing(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), anaxer_form="document", anaxer_ping_interval=0.3, anaxer_pong_timeout=1.0)
    with ax_connect(sim) as ws:
        assert recv_json(ws)["type"] == "ping"
        ws.send(json.dumps({"type": "pong"}))
        sim.stall()
        assert_silent(ws, 1.2)  # longer than the pong timeout: no ping, and no close either
        sim.unstall()
        assert recv_until(ws, lambda m: m["type"] == "ping")["type"] == "ping"


def test_ignore_pings_keeps_events_flowing(make_sim: SimFactory) -> None:
    sim = make_sim()
    with op_connect(sim) as op, ax_connect(sim) as ax:
        recv_json(op), recv_json(ax)
        ax.send(json.dumps({"subscribe": "creations"}))
        recv_json(ax)
        sim.ignore_pings(True)
        op.send(json.dumps({"type": "ping"}))
        ax.send(json.dumps({"type": "ping"}))
        launch = sim.emit(1, "launch")[0]
        assert recv_json(op)["mint"] == launch.mint  # the event, and no pong before it
        assert recv_json(ax)["mint"] == launch.mint
        assert_silent(ax, 0.2)
        sim.ignore_pings(False, provider="openpump")
        op.send(json.dumps({"type": "ping"}))
        assert recv_until(op, lambda m: m["type"] == "pong")["type"] == "pong"
        assert sim.connections("openpump")[0].client_pings == 2


@pytest.mark.parametrize("provider", ["openpump", "anaxer"])
def test_malformed_frames(make_sim: SimFactory, provider: str) -> None:
    sim = make_sim(providers=(provider,))
    connect = op_connect if provider == "openpump" else ax_connect
    with connect(sim, max_size=None) as ws:
        recv_json(ws)
        assert sim.send_malformed("not_json") == 1
        with pytest.raises(json.JSONDecodeError):
            json.loads(ws.recv(timeout=5))
        sim.send_malformed("json_array")
        assert isinstance(recv_json(ws), list)
        sim.send_malformed("unknown_type")
        assert recv_json(ws)["type"] == "sim_unknown_event"
        sim.send_malformed("missing_fields")
        frame = recv_json(ws)
        data = frame.get("data", frame)
        assert "mint" not in data and data["type"] in ("new_token", "created")
        sim.send_malformed("binary")
        raw = ws.recv(timeout=5)
        assert isinstance(raw, bytes) and isinstance(json.loads(raw), dict)
        sim.send_malformed("oversized", size=3 * 1024 * 1024 + 7)
        big = ws.recv(timeout=10)
        assert isinstance(big, str) and len(big.encode()) == 3 * 1024 * 1024 + 7
        assert isinstance(json.loads(big), dict)
        with pytest.raises(ValueError):
            sim.send_malformed("bogus")  # type: ignore[arg-type]
    assert sim.history(provider) == []  # malformed frames are not part of the feed


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_restart_same_port_with_downtime_market_keeps_running(make_sim: SimFactory) -> None:
    sim = make_sim(rate=50.0)
    ports = (sim.port("openpump"), sim.port("anaxer"))
    with op_connect(sim) as op:
        recv_json(op)
        restarter = threading.Thread(target=sim.restart, kwargs={"downtime": 1.0})
        restarter.start()
        assert expect_close(op) == (None, "")  # dropped, no close frame
        sim.wait_for(lambda: _refused(ports[0]) and _refused(ports[1]), timeout=3)
        down = len(sim.history("anaxer"))
        sim.wait_for(lambda: len(sim.history("anaxer")) > down + 5, timeout=0.8)
        assert _refused(ports[1]), "events were generated while the servers were down"
        restarter.join(5)
        assert not restarter.is_alive()
    assert (sim.port("openpump"), sim.port("anaxer")) == ports
    # REST (back on the same port) serves what was generated during the downtime.
    served = requests.get(
        f"{sim.rest_url()}/v1/creations", params={"limit": 1000}, headers={"Authorization": "Bearer k"}, timeout=5
    ).json()["data"]
    assert served == sim.history("anaxer", "creations")[: len(served)]
    assert len(served) >= down / 20
    with op_connect(sim) as op, ax_connect(sim) as ax:
        assert recv_json(op)["type"] == "connected"
        assert recv_json(ax)["type"] == "connected"


def test_reject_next_with_http_status(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("openpump",))
    sim.reject_next(2, status=503)
    sim.reject_next(1, status=429)
    for expected in (503, 503, 429):
        with pytest.raises(InvalidStatus) as info:
            op_connect(sim)
        assert info.value.response.status_code == expected
    assert info.value.response.headers["Retry-After"] == "1"
    with op_connect(sim) as ws:
        assert recv_json(ws)["type"] == "connected"


def test_reject_next_with_close_code(make_sim: SimFactory) -> None:
    sim = make_sim()
    sim.reject_next(1, provider="anaxer", close_code=1013)
    with ax_connect(sim) as ws:
        assert expect_close(ws)[0] == 1013
    with ax_connect(sim) as ws, op_connect(sim) as op:
        assert recv_json(ws)["type"] == "connected"
        assert recv_json(op)["type"] == "connected"


def test_pause_and_resume_the_market_clock(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), rate=100.0)
    sim.wait_for(lambda: sim.history("anaxer"))
    sim.pause()
    paused_at = len(sim.history("anaxer"))
    time.sleep(0.3)  # an absence can only be checked over a window
    assert len(sim.history("anaxer")) == paused_at
    sim.emit(2, "trade")  # emit works while paused
    assert len(sim.history("anaxer")) > paused_at
    sim.resume()
    count = len(sim.history("anaxer"))
    sim.wait_for(lambda: len(sim.history("anaxer")) > count + 10)


def test_start_paused_until_resumed(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), rate=100.0, paused=True)
    with ax_connect(sim) as ws:
        recv_json(ws)
        ws.send(json.dumps({"subscribe": "creations"}))
        recv_json(ws)
        assert sim.history("anaxer") == []  # nothing was generated before the client was ready
        sim.resume()
        first = recv_until(ws, lambda m: m["type"] == "created")
    assert first == sim.history("anaxer", "creations")[0]
