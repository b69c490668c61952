"""The client against the simulator, over real loopback sockets."""

from __future__ import annotations

import json
import queue
import threading
import time

import pytest
import websockets.asyncio.server as ws_server

import pumpsync
from pumpsync import AuthenticationError, ConfigurationError, PlanError, SubscriptionRejected
from tests.conftest import drain, wait_until

ALL_ANAXER = {"creations": {}, "trades": {}, "graduations": {}, "prices": {}}


def conn_stats(client: pumpsync.Client, index: int = 0) -> dict:
    return client.stats()["connections"][index]


def next_of_kind(client: pumpsync.Client, kind: str, timeout: float = 10.0) -> pumpsync.Event:
    deadline = time.monotonic() + timeout
    while True:
        event = client.get(timeout=max(0.01, deadline - time.monotonic()))
        if event.kind == kind:
            return event


def settle_launch(client: pumpsync.Client, sim) -> None:
    """Launch one token and consume its new_token and token_enriched, so trades follow on their own."""
    sim.emit(1, kind="launch")
    sim.wait_for(lambda: any(h["type"] == "token_enriched" for h in sim.history("openpump")))
    drain(client, 2)


def wait_open(client: pumpsync.Client, sim, provider: str, n: int = 1, subscribed: bool = False) -> None:
    wait_until(lambda: client.connected, what="client connected")
    sim.wait_for_connections(provider, n, subscribed=subscribed, timeout=10)


# ---------------------------------------------------------------- OpenPump


def test_openpump_every_event_type(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    sim.emit(1, kind="launch")
    sim.emit(4, kind="trade")
    sim.wait_for(lambda: any(h["type"] == "token_enriched" for h in sim.history("openpump")))
    history = sim.history("openpump")
    events = drain(client, len(history))
    assert [(e.kind, e.signature) for e in events] == [
        ("trade" if h["type"] in ("buy", "sell") else h["type"], h["signature"]) for h in history
    ]
    kinds = {e.kind for e in events}
    assert {"new_token", "token_enriched", "trade"} <= kinds
    enriched = next(e for e in events if e.kind == "token_enriched")
    assert enriched.name and enriched.symbol and enriched.market_cap_sol is not None
    trade = next(e for e in events if e.kind == "trade")
    assert trade.side in ("buy", "sell") and trade.sol_amount and trade.trader
    assert all(e.provider == "openpump" and e.connection == 0 and not e.backfill for e in events)


def test_openpump_status_and_heartbeat(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), ping_interval=0.2).start()
    wait_open(client, sim, "openpump")
    status = client.status(timeout=5)
    assert status["running"] is True and "processedCount" in status
    wait_until(lambda: conn_stats(client)["pongs"] >= 2, what="two pongs")
    assert client.raw_stats.connections[0].rtt.count >= 2
    assert sim.connections("openpump")[0].client_pings >= 2


def test_openpump_pong_timeout_reconnects(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), ping_interval=0.2, pong_timeout=0.3).start()
    wait_open(client, sim, "openpump")
    sim.ignore_pings(True, provider="openpump")
    wait_until(lambda: conn_stats(client)["disconnects"].get("pong_timeout"), what="pong timeout")
    sim.ignore_pings(False, provider="openpump")
    wait_until(lambda: conn_stats(client)["connects"] >= 2 and client.connected, what="reconnect")


@pytest.mark.parametrize("code", [1000, 1001, 1011])
def test_openpump_retryable_close_codes(sim, make_client, code: int) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    assert sim.close(code, provider="openpump") == 1
    wait_until(lambda: conn_stats(client)["connects"] >= 2 and client.connected, what="reconnect")
    assert conn_stats(client)["disconnects"] == {f"closed:{code}": 1}
    sim.emit(1, kind="trade")
    next_of_kind(client, "trade")


@pytest.mark.parametrize(("code", "error"), [(1008, AuthenticationError), (4001, PlanError)])
def test_openpump_fatal_close_codes(sim, make_client, code: int, error: type) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    sim.close(code, provider="openpump")
    with pytest.raises(error) as info:
        client.get(timeout=10)
    assert info.value.close_code == code and str(code) in str(info.value)
    assert client.error is info.value
    with pytest.raises(error):  # the fatal error stays for the next reader
        client.get(timeout=1)
    assert conn_stats(client)["connects"] == 1  # no retry


@pytest.mark.parametrize(("key", "error"), [("sim-invalid", AuthenticationError), ("sim-free", PlanError)])
def test_openpump_refused_keys(sim, make_client, key: str, error: type) -> None:
    client = make_client("openpump", sim.url("openpump"), api_key=key).start()
    with pytest.raises(error):
        client.get(timeout=10)


def test_header_auth(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), auth="header").start()
    wait_open(client, sim, "openpump")
    sim.emit(1, kind="trade")
    next_of_kind(client, "trade")


# ---------------------------------------------------------------- Anaxer


@pytest.mark.parametrize("form", ["v1", "document"])
def test_anaxer_every_channel(form: str, make_client) -> None:
    from pumpsync.simulator import Simulator

    with Simulator(providers=("anaxer",), rate=0, seed=3, anaxer_form="auto" if form == "v1" else "document") as sim:
        client = make_client("anaxer", sim.url("anaxer"), channels=ALL_ANAXER).start()
        wait_open(client, sim, "anaxer", subscribed=True)
        wait_until(lambda: all(len(c.subscriptions) == 4 for c in sim.connections("anaxer")), what="4 subscriptions")
        assert sim.connections("anaxer")[0].form == form
        sim.emit(1, kind="launch")
        sim.emit(3, kind="trade")
        sim.emit(1, kind="graduation")
        expected = len(sim.history("anaxer"))
        events = drain(client, expected)
        assert {e.kind for e in events} == {"new_token", "trade", "graduation", "price"}
        assert all(e.slot is not None and e.channel for e in events)
        assert sorted(e.signature or "" for e in events if e.kind != "price") == sorted(
            h["signature"] for h in sim.history("anaxer") if "signature" in h
        )
        if form == "document":
            assert client.raw_stats.connections[0].pings_sent == 0  # the server pings us in this form


def test_anaxer_document_form_answers_server_pings(make_client) -> None:
    from pumpsync.simulator import Simulator

    with Simulator(
        providers=("anaxer",), rate=0, anaxer_form="document", anaxer_ping_interval=0.2, anaxer_pong_timeout=0.5
    ) as sim:
        client = make_client("anaxer", sim.url("anaxer"), channels={"creations": {}}).start()
        wait_open(client, sim, "anaxer", subscribed=True)
        wait_until(lambda: sim.connections("anaxer")[0].pongs_received >= 5, what="5 pongs to server pings")
        assert conn_stats(client)["connects"] == 1  # never closed for a missing pong


def test_anaxer_document_form_streams_with_a_stale_timeout_below_the_hello_wait(make_client) -> None:
    """Issue 11: the server sends nothing until subscribed; the stale verdict must not come first."""
    from pumpsync.simulator import Simulator

    with Simulator(providers=("anaxer",), rate=30, anaxer_form="document") as sim:
        client = make_client(
            "anaxer",
            sim.url("anaxer"),
            channels={"trades": {}},
            hello_timeout=2.0,
            stale_timeout=1.0,
            pong_timeout=0.5,
            backoff_max=0.5,
        ).start()
        wait_open(client, sim, "anaxer", subscribed=True)
        next_of_kind(client, "trade")


def test_anaxer_reconnect_uses_the_learned_document_form_at_once(make_client) -> None:
    """Issue 11: a later session subscribes without waiting hello_timeout again."""
    from pumpsync.simulator import Simulator

    with Simulator(providers=("anaxer",), rate=0, anaxer_form="document", anaxer_ping_interval=0.2) as sim:
        # The first session learns the form from the server's first ping, long before hello_timeout.
        client = make_client(
            "anaxer", sim.url("anaxer"), channels={"creations": {}}, hello_timeout=60.0, stale_timeout=200.0
        ).start()
        wait_open(client, sim, "anaxer", subscribed=True)
        sim._server("anaxer").ping_interval = 3600.0  # from now on the server says nothing first
        sim.drop(provider="anaxer")
        wait_until(lambda: conn_stats(client)["connects"] >= 2, what="reconnect")
        # Without the learned form this would wait 60 s (the deadline here is 15 s).
        sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=15)
        sim.emit(1, kind="launch")
        next_of_kind(client, "new_token")


def test_anaxer_runtime_subscribe_unsubscribe_and_resubscribe(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer"), channels={"creations": {}}).start()
    wait_open(client, sim, "anaxer", subscribed=True)
    client.subscribe("trades", {"side": "buy"})
    wait_until(lambda: {s.channel for s in sim.connections("anaxer")[0].subscriptions} == {"creations", "trades"})
    client.unsubscribe("creations")
    wait_until(lambda: {s.channel for s in sim.connections("anaxer")[0].subscriptions} == {"trades"})
    sim.drop(provider="anaxer")
    wait_until(lambda: conn_stats(client)["connects"] >= 2 and client.connected, what="reconnect")
    wait_until(
        lambda: (
            sim.connections("anaxer")
            and [(s.channel, s.filters) for s in sim.connections("anaxer")[0].subscriptions]
            == [("trades", {"side": "buy"})]
        ),
        what="the registry restored",
    )
    sim.emit(1, kind="launch")
    sim.emit(6, kind="trade")
    sides = {e.side for e in drain(client, 1) if e.kind == "trade"}
    assert sides <= {"buy"}


def test_anaxer_rejected_channel_does_not_stop_the_others(sim, make_client) -> None:
    client = make_client(
        "anaxer", sim.url("anaxer"), api_key="sim-free", channels={"creations": {}, "trades": {}}
    ).start()
    with pytest.raises(SubscriptionRejected) as info:
        client.get(timeout=10)
    assert info.value.channel == "trades"
    sim.emit(1, kind="launch")
    event = client.get(timeout=10)
    assert event.kind == "new_token"
    assert client.error is None and client.subscriptions()[0].channel == "creations"


@pytest.mark.parametrize("key", ["sim-invalid"])
def test_anaxer_invalid_key(sim, make_client, key: str) -> None:
    client = make_client("anaxer", sim.url("anaxer"), api_key=key).start()
    with pytest.raises(AuthenticationError):
        client.get(timeout=10)


def test_anaxer_4001_close_is_fatal(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer")).start()
    wait_open(client, sim, "anaxer")
    sim.close(4001, provider="anaxer")
    with pytest.raises(AuthenticationError) as info:
        client.get(timeout=10)
    assert info.value.close_code == 4001


@pytest.mark.parametrize("code", [4002, 4003])
def test_anaxer_limit_closes_retry_with_a_long_floor(sim, make_client, code: int) -> None:
    client = make_client("anaxer", sim.url("anaxer"), limited_backoff=1.5).start()
    wait_open(client, sim, "anaxer")
    sim.close(code, provider="anaxer")
    closed_at = time.time()
    wait_until(lambda: client.raw_stats.connections[0].next_attempt_at, what="a scheduled retry")
    assert client.raw_stats.connections[0].next_attempt_at >= closed_at + 1.5 - 0.05
    wait_until(lambda: conn_stats(client)["connects"] >= 2, timeout=15, what="reconnect after the floor")
    assert client.error is None


def test_rate_limited_key_keeps_retrying_slowly(sim, make_client) -> None:
    client = make_client("anaxer", sim.url("anaxer"), api_key="sim-ratelimited", limited_backoff=0.3).start()
    wait_until(lambda: conn_stats(client)["disconnects"].get("closed:4002", 0) >= 2, what="two 4002 closes")
    assert client.error is None


# ---------------------------------------------------------------- faults


def test_stale_half_open_socket_reconnects(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), ping_interval=30, pong_timeout=1, stale_timeout=1.5).start()
    wait_open(client, sim, "openpump")
    sim.stall(provider="openpump")
    wait_until(lambda: conn_stats(client)["disconnects"].get("stale"), what="stale detection")
    wait_until(lambda: client.connected, what="reconnect")


def test_stale_before_the_first_frame(make_client) -> None:
    """A server that accepts the WebSocket and never says a word is detected too."""
    import asyncio

    accepted = []
    ready = threading.Event()
    stop = threading.Event()
    port: list[int] = []

    async def silent(ws) -> None:
        accepted.append(1)
        while not stop.is_set():
            await asyncio.sleep(0.05)

    async def main() -> None:
        async with ws_server.serve(silent, "127.0.0.1", 0) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="silent-server")
    thread.start()
    try:
        ready.wait(5)
        client = make_client(
            "openpump", f"ws://127.0.0.1:{port[0]}/v1/stream", ping_interval=30, pong_timeout=1, stale_timeout=1.2
        ).start()
        wait_until(lambda: conn_stats(client)["disconnects"].get("stale", 0) >= 2, what="two stale verdicts")
        assert conn_stats(client)["frames"] == 0
    finally:
        stop.set()
        thread.join(10)


def test_abrupt_drop_reconnects(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    assert sim.drop(provider="openpump") == 1
    wait_until(lambda: conn_stats(client)["connects"] >= 2 and client.connected, what="reconnect")
    assert conn_stats(client)["disconnects"] == {"dropped": 1}


@pytest.mark.parametrize("kind", ["not_json", "json_array", "unknown_type", "missing_fields", "binary"])
def test_malformed_frames_are_counted_and_survived(sim, make_client, kind: str) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    sim.emit(1, kind="launch")
    drain(client, 1)
    sim.send_malformed(kind, provider="openpump")
    sim.emit(1, kind="trade")
    events = []
    while not events or events[-1].kind != "trade":
        events.append(client.get(timeout=10))
    if kind in ("unknown_type", "missing_fields"):
        assert "unknown" in [e.kind for e in events]
        assert all(isinstance(e.raw, dict) for e in events)
    assert sum(conn_stats(client)["malformed"].values()) >= 1
    assert conn_stats(client)["connects"] == 1


def test_oversized_frame_closes_1009_and_reconnects(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), max_frame_size=64 * 1024).start()
    wait_open(client, sim, "openpump")
    sim.send_malformed("oversized", provider="openpump", size=200_000)
    wait_until(lambda: conn_stats(client)["disconnects"].get("oversized:1009"), what="1009 close")
    wait_until(lambda: client.connected and conn_stats(client)["connects"] >= 2, what="reconnect")
    assert conn_stats(client)["malformed"]["oversized"] == 1


def test_server_restart_on_the_same_port(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_open(client, sim, "openpump")
    sim.restart(provider="openpump", downtime=0.3)
    wait_until(lambda: conn_stats(client)["connects"] >= 2 and client.connected, what="reconnect after restart")
    sim.emit(1, kind="trade")
    next_of_kind(client, "trade")


def test_rejected_upgrades_back_off_then_recover(sim, make_client) -> None:
    sim.reject_next(3, provider="openpump", status=503)
    client = make_client("openpump", sim.url("openpump")).start()
    wait_until(lambda: client.connected, what="connected after 3 refusals")
    assert conn_stats(client)["disconnects"] == {"http_503": 3}


def test_max_retries_gives_up(make_client) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client("openpump", f"ws://127.0.0.1:{port}/v1/stream", max_retries=2).start()
    with pytest.raises(pumpsync.ConnectionLost):
        client.get(timeout=10)


# ---------------------------------------------------------------- delivery


def test_overflow_drops_the_oldest_and_counts(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), queue_size=10).start()
    wait_open(client, sim, "openpump")
    settle_launch(client, sim)
    sim.emit(30, kind="trade")
    trades = sim.history("openpump")[2:]
    assert len(trades) == 30
    wait_until(lambda: client.stats()["delivered"] >= 32, what="all delivered")
    stats = client.stats()
    assert stats["dropped"] == len(trades) - 10 and stats["queue_depth"] == 10
    kept = drain(client, 10)
    assert [e.signature for e in kept] == [h["signature"] for h in trades[-10:]]  # the newest survive


def test_redundant_connections_deliver_once(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump"), connections=3).start()
    wait_until(lambda: all(c["state"] == "open" for c in client.stats()["connections"]), what="3 open")
    sim.wait_for_connections("openpump", 3, timeout=10)
    settle_launch(client, sim)
    sim.emit(20, kind="trade")
    n = len(sim.history("openpump"))
    events = drain(client, n - 2)
    assert len({e.identity for e in events}) == n - 2
    wait_until(lambda: client.stats()["duplicates"] == 2 * n, what="the copies from the other two connections")
    stats = client.stats()
    assert sum(c["first_deliveries"] for c in stats["connections"]) == stats["delivered"] == n
    with pytest.raises(queue.Empty):
        client.get(timeout=0.3)


# ---------------------------------------------------------------- the public API


def test_connect_iterator(sim) -> None:
    sim.emit(0)
    got = []
    with pumpsync.connect(
        "anaxer", api_key="k", url=sim.url("anaxer"), channels={"creations": {}}, hello_timeout=0.5
    ) as stream:
        sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
        sim.emit(2, kind="launch")
        for event in stream:
            got.append(event)
            if len(got) == 2:
                break
    assert [e.kind for e in got] == ["new_token", "new_token"]


def test_iterator_raises_fatal_errors(sim) -> None:
    stream = pumpsync.connect("openpump", api_key="sim-invalid", url=sim.url("openpump"))
    with stream, pytest.raises(AuthenticationError):
        for _ in stream:
            pass


def test_close_ends_the_iterator_from_another_thread(sim) -> None:
    client = pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"))
    timer = threading.Timer(0.5, client.close)
    timer.start()
    assert list(client) == []
    timer.join()


def test_close_is_bounded_on_a_stalled_server(sim) -> None:
    client = pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"))
    wait_until(lambda: client.connected)
    sim.stall(provider="openpump")
    started = time.monotonic()
    client.close(timeout=5)
    assert time.monotonic() - started < 5.5


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"ping_interval": 0}, "ping_interval"),
        ({"queue_size": -1}, "queue_size"),
        ({"queue_size": 10**12}, "queue_size"),  # refused here, not a MemoryError at construction (#18.16)
        ({"dedup_size": 4 * 10**9}, "dedup_size"),
        ({"backoff_initial": 5, "backoff_max": 1}, "backoff_initial"),
        ({"url": "http://x"}, "url"),
        ({"channels": {"bogus": {}}}, "channels"),
        ({"connections": 0}, "connections"),
    ],
)
def test_invalid_configuration(options: dict, option: str) -> None:
    options = {"api_key": "k", **options}
    provider = "anaxer" if "channels" in options else "openpump"
    with pytest.raises(ConfigurationError) as info:
        pumpsync.Client(provider, **options)
    assert info.value.option == option


def test_an_unknown_option_is_refused_naming_it() -> None:
    """mypy refuses a typo (the old keywords are a typed dict); at run time, one line naming it."""
    with pytest.raises(ConfigurationError, match="nonsense: no such option"):
        pumpsync.Client("openpump", api_key="k", nonsense=1)  # type: ignore[call-arg]


def test_api_key_from_env_and_file(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PUMPSYNC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="no API key"):
        pumpsync.Client("openpump")
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    client = pumpsync.Client("openpump", api_key_file=str(key_file))
    assert client.config.api_key.reveal() == "from-file"
    monkeypatch.setenv("PUMPSYNC_API_KEY", "from-env")
    assert pumpsync.Client("openpump").config.api_key.reveal() == "from-env"


def test_key_is_not_in_reprs() -> None:
    client = pumpsync.Client("openpump", api_key="SuperSecret-123")
    assert "SuperSecret" not in repr(client) and "SuperSecret" not in repr(client.config)
    assert "SuperSecret" not in json.dumps(client.stats())


def test_http_429_on_the_upgrade_honours_retry_after(sim, make_client) -> None:
    """The simulator answers a rejected upgrade's 429 with Retry-After: 1; that beats a shorter floor."""
    sim.reject_next(1, provider="openpump", status=429)
    refused_at = time.time()
    client = make_client("openpump", sim.url("openpump"), limited_backoff=0.1).start()
    wait_until(lambda: client.raw_stats.connections[0].next_attempt_at, what="a scheduled retry")
    assert client.raw_stats.connections[0].next_attempt_at >= refused_at + 1.0 - 0.05
    wait_until(lambda: client.connected, what="connected after the wait")
