"""pumpsync.Client against the PumpPortal simulator, end to end over real sockets."""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

import pytest
from pphelpers import PPSim, pp_url

from pumpsync import Client
from pumpsync.errors import SubscriptionRejected
from pumpsync.events import Event
from pumpsync.simulator.market import Launch, Trade
from pumpsync.simulator.plans import FUNDED_KEY, UNFUNDED_KEY
from tests.conftest import wait_until

MakeClient = Callable[..., Client]


def events_until(client: Client, predicate: Callable[[Event], bool], timeout: float = 10.0) -> list[Event]:
    """Events (errors raise) until one matches ``predicate``; that one is last."""
    out: list[Event] = []
    wait_until(lambda: _take(client, out) and predicate(out[-1]), timeout, "a matching event")
    return out


def _take(client: Client, out: list[Event]) -> bool:
    try:
        out.append(client.get(timeout=0.05))
    except queue.Empty:
        return False
    return True


def test_free_channels_stream_launches_and_migrations(pp_sim: PPSim, make_client: MakeClient) -> None:
    sim = pp_sim()
    client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}, "migrations": {}}).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)
    wait_until(lambda: len(sim.connections("pumpportal")[0].subscriptions) == 2, what="both channels")
    emitted = sim.emit(1, "launch")
    launch = emitted[0]
    assert isinstance(launch, Launch)
    got = events_until(client, lambda e: e.kind == "new_token")
    assert (got[-1].mint, got[-1].creator, got[-1].channel, got[-1].timestamp) == (
        launch.mint,
        launch.token.creator,
        "new_tokens",
        None,
    )
    # The creator's first buy (a trade of the same transaction in the market, if any) rides in the launch.
    buy = next((e for e in emitted[1:] if isinstance(e, Trade)), None)
    first_buy = (buy.token_amount, buy.sol_amount) if buy is not None else (0.0, 0.0)
    assert (got[-1].initial_buy_tokens, got[-1].initial_buy_sol) == first_buy
    v_sol, v_tokens = got[-1].virtual_sol_reserves, got[-1].virtual_token_reserves
    assert v_sol is not None and v_tokens is not None and v_sol >= 30
    assert got[-1].pool == "pump" and got[-1].price_sol == v_sol / v_tokens
    graduated = [e for e in sim.emit(1, "graduation") if not isinstance(e, (Launch, Trade))]
    got = events_until(client, lambda e: e.kind == "migration")
    assert got[-1].mint == graduated[0].mint and got[-1].channel == "migrations"


def test_an_unfunded_key_gets_a_typed_rejection_while_launches_continue(
    pp_sim: PPSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    sim = pp_sim()
    launch = sim.emit(1, "launch")[0]
    client = make_client(
        "pumpportal",
        pp_url(sim),
        api_key=UNFUNDED_KEY,
        channels={"new_tokens": {}, "token_trades": {"keys": [launch.mint]}},
    ).start()
    with caplog.at_level(logging.WARNING, logger="pumpsync"), pytest.raises(SubscriptionRejected) as rejected:
        client.get(timeout=10)
    assert (rejected.value.channel, rejected.value.code, rejected.value.provider) == (
        "token_trades",
        "unfunded_key",
        "pumpportal",
    )
    assert "0.02 SOL" in str(rejected.value) and UNFUNDED_KEY not in str(rejected.value)
    assert any("unfunded_key" in r.getMessage() for r in caplog.records)
    assert client.stats()["rejected"] == {"token_trades": 1}
    assert [s.channel for s in client.subscriptions()] == ["new_tokens"]
    sim.emit(3, "trade")
    launch = sim.emit(1, "launch")[0]
    got = events_until(client, lambda e: e.kind == "new_token")
    assert got[-1].mint == launch.mint and all(e.kind == "new_token" for e in got)


def test_keys_are_added_and_removed_on_the_same_socket_and_restored_after_reconnects(
    pp_sim: PPSim, make_client: MakeClient
) -> None:
    sim = pp_sim()
    first = sim.emit(1, "launch")[0]
    client = make_client(
        "pumpportal",
        pp_url(sim),
        api_key=FUNDED_KEY,
        channels={"token_trades": {"keys": [first.mint]}},
        stale_timeout=60,  # a quiet market: no staleness reconnects besides the ones made here
    ).start()

    def keys() -> list[Any]:
        conns = sim.connections("pumpportal")
        return conns[0].subscriptions[0].filters["keys"] if conns and conns[0].subscriptions else []

    wait_until(lambda: keys() == [first.mint], what="the first key")
    trade = next(e for e in sim.emit(1, "trade") if isinstance(e, Trade))
    assert events_until(client, lambda e: e.kind == "trade")[-1].signature == trade.signature
    second = sim.emit(1, "launch")[0]
    client.subscribe("token_trades", {"keys": [second.mint]})
    wait_until(lambda: keys() == sorted([first.mint, second.mint]), what="both keys")
    assert [s.filters for s in client.subscriptions()] == [{"keys": [first.mint, second.mint]}]
    sim.drop("pumpportal")
    wait_until(lambda: keys() == sorted([first.mint, second.mint]), what="both keys again after the drop")
    sim.restart("pumpportal")
    wait_until(lambda: keys() == sorted([first.mint, second.mint]), what="both keys again after the restart")
    client.unsubscribe("token_trades", {"keys": [first.mint]})
    wait_until(lambda: keys() == [second.mint], what="the second key alone")
    assert client.stats()["connections"][0]["connects"] >= 3


def test_other_launchpads_are_dropped_and_quote_mint_creates_never_delivered(
    pp_sim: PPSim, make_client: MakeClient
) -> None:
    sim = pp_sim(bonk_share=1.0, mislabelled_share=1.0)
    client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)
    launches = [e for e in sim.emit(3, "launch") if isinstance(e, Launch)]
    got = events_until(client, lambda e: e.mint == launches[-1].mint)
    assert [e.mint for e in got] == [launch.mint for launch in launches]  # no bonk launch, no USDC "launch"
    wait_until(lambda: client.stats()["connections"][0]["malformed"].get("invalid_fields") == 3, what="3 malformed")
    wait_until(
        lambda: client.stats()["connections"][0]["filtered"] == {"other_pool": 3}, what="3 bonk launches counted"
    )


def test_a_pools_filter_keeps_other_launchpads(pp_sim: PPSim, make_client: MakeClient) -> None:
    sim = pp_sim(bonk_share=1.0)
    client = make_client(
        "pumpportal", pp_url(sim), channels={"new_tokens": {"pools": ["pump", "bonk"]}}, stale_timeout=60
    ).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)
    sim.emit(1, "launch")
    got = events_until(client, lambda e: e.raw.get("pool") == "bonk")
    assert [e.raw["pool"] for e in got] == ["pump", "bonk"]


def test_a_ban_at_the_upgrade_backs_off_and_says_so(
    pp_sim: PPSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.sync.client import connect

    sim = pp_sim(ban_seconds=1.0)
    with connect(pp_url(sim), close_timeout=0.3):  # another program of this client's, on the one allowed socket
        sim.wait_for_connections("pumpportal", 1)
        with caplog.at_level(logging.WARNING, logger="pumpsync"):
            client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60).start()
            wait_until(lambda: any("HTTP 429" in r.getMessage() for r in caplog.records), what="the ban's log line")
    line = next(r.getMessage() for r in caplog.records if "HTTP 429" in r.getMessage())
    assert "reconnecting in" in line
    sim.wait_for_connections("pumpportal", 1, subscribed=True, timeout=15)  # once the ban is over
    assert client.connected


def test_the_key_never_shows(pp_sim: PPSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    secret = "pp-secret-funded-key-0123456789"
    sim = pp_sim(keys={secret: "pro"})
    launch = sim.emit(1, "launch")[0]
    with caplog.at_level(logging.DEBUG):
        client = make_client(
            "pumpportal",
            pp_url(sim),
            api_key=secret,
            channels={"new_tokens": {}, "token_trades": {"keys": [launch.mint]}},
            stale_timeout=60,
        ).start()
        sim.wait_for_connections("pumpportal", 1, subscribed=True)
        wait_until(lambda: len(sim.connections("pumpportal")[0].subscriptions) == 2, what="both channels")
        assert sim.connections("pumpportal")[0].key_plan == "pro"
        sim.drop("pumpportal")
        sim.wait_for_connections("pumpportal", 1, subscribed=True)
    shown = [repr(client), repr(client.config), str(client.stats()), *(r.getMessage() for r in caplog.records)]
    assert not [text for text in shown if secret in text]
    assert client.stats()["connections"][0]["pings_sent"] == 0  # no heartbeat exists to send


def test_subscription_messages_stay_under_the_operators_rate(pp_sim: PPSim, make_client: MakeClient) -> None:
    """300 runtime subscriptions in a burst: paced under 200 messages a second, none refused, all applied."""
    from pphelpers import many_keys

    sim = pp_sim(rate=20)  # launches flow: their frames clock the paced messages out
    client = make_client("pumpportal", pp_url(sim), api_key=FUNDED_KEY, channels={"new_tokens": {}}).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)
    keys = many_keys(300)
    for key in keys:
        client.subscribe("account_trades", {"keys": [key]})

    def subscribed() -> int:
        conn = sim.connections("pumpportal")[0]
        return next((len(s.filters["keys"]) for s in conn.subscriptions if s.channel == "account_trades"), 0)

    wait_until(lambda: subscribed() == 300, what="300 keys on the server")
    assert dict(client.raw_stats.notices) == {}  # no "rate_limited" errors frame
    assert client.stats()["connections"][0]["connects"] == 1  # on the one socket


def test_no_key_default_channels_through_connect(pp_sim: PPSim) -> None:
    import pumpsync

    sim = pp_sim()
    with pumpsync.connect("pumpportal", url=pp_url(sim), stale_timeout=60) as stream:
        assert stream.config.api_key is None
        assert stream.config.channel_names == ["new_tokens", "migrations"]
        wait_until(
            lambda: [len(c.subscriptions) for c in sim.connections("pumpportal")] == [2], what="both free channels"
        )
        launch = sim.emit(1, "launch")[0]
        sim.emit(1, "graduation")
        kinds = [e.kind for e in events_until(stream, lambda e: e.kind == "migration")]
        assert kinds == ["new_token", "migration"] and launch.mint


def test_more_than_one_connection_is_refused_with_the_reason() -> None:
    from pumpsync.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"at most 1.*bans clients that open more than one connection"):
        Client("pumpportal", connections=2)


def test_bad_keys_are_refused_at_configuration_and_at_runtime(pp_sim: PPSim, make_client: MakeClient) -> None:
    from pumpsync.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="non-empty 'keys' list"):
        Client("pumpportal", channels={"token_trades": {}})
    with pytest.raises(ConfigurationError, match="not a base58 address"):
        Client("pumpportal", channels={"account_trades": {"keys": ["WALLET"]}})
    with pytest.raises(ConfigurationError, match="silent_trades_after"):
        Client("pumpportal", silent_trades_after=-1)
    sim = pp_sim()
    client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60)
    with pytest.raises(ConfigurationError, match="list of strings"):
        client.subscribe("token_trades", {"keys": "one"})
    with pytest.raises(ConfigurationError, match="as a whole"):
        client.unsubscribe("new_tokens", {"keys": ["x"]})
    assert [s.channel for s in client.subscriptions()] == ["new_tokens"]


def test_a_silent_trade_channel_is_reported_while_launches_flow(
    pp_sim: PPSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    from pphelpers import MINT_A

    sim = pp_sim()
    with caplog.at_level(logging.WARNING, logger="pumpsync"):
        client = make_client(
            "pumpportal",
            pp_url(sim),
            api_key=FUNDED_KEY,  # funded, but the mint never trades: silence all the same
            channels={"new_tokens": {}, "token_trades": {"keys": [MINT_A]}},
            silent_trades_after=0.2,
            stale_timeout=60,
        ).start()
        wait_until(lambda: [len(c.subscriptions) for c in sim.connections("pumpportal")] == [2], what="subscribed")

        def reported() -> bool:
            sim.emit(1, "launch")  # launches keep flowing until the report comes
            return client.raw_stats.notices["trade_channel_silent"] == 1

        wait_until(reported, what="the silence report")
    assert any("token_trades was acknowledged" in r.getMessage() for r in caplog.records)
    assert "token_trades" in [s.channel for s in client.subscriptions()]  # reported, not cancelled


def test_a_403_at_the_upgrade_is_a_ban_to_wait_out_not_a_fatal_refusal(
    pp_sim: PPSim, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    sim = pp_sim()
    sim.reject_next(2, "pumpportal", status=403)
    with caplog.at_level(logging.WARNING, logger="pumpsync"):
        client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60).start()
        sim.wait_for_connections("pumpportal", 1, subscribed=True, timeout=15)
    lines = [r.getMessage() for r in caplog.records if "HTTP 403" in r.getMessage()]
    assert lines and all("probably a ban" in line and "reconnecting in" in line for line in lines)
    assert client.error is None


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The client's metrics as Prometheus reads them: (sample name, sorted labels) -> value."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from pumpsync.metrics import make_registry

    text = generate_latest(make_registry(client)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_filtered_frames_are_a_metric_at_zero_from_the_first_scrape(pp_sim: PPSim, make_client: MakeClient) -> None:
    sim = pp_sim(bonk_share=1.0)
    client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)

    def filtered(reason: str) -> float:
        labels = (("connection", "0"), ("provider", "pumpportal"), ("reason", reason))
        return scrape(client)[("pumpsync_filtered_frames_total", labels)]

    assert (filtered("other_pool"), filtered("unsubscribed")) == (0, 0)  # declared by the spec: there before any
    launches = [e for e in sim.emit(3, "launch") if isinstance(e, Launch)]
    events_until(client, lambda e: e.mint == launches[-1].mint)
    wait_until(lambda: filtered("other_pool") == 3, what="3 bonk launches in the metric")
    assert client.stats()["connections"][0]["filtered"] == {"other_pool": 3}


def test_disconnect_time_is_counted_in_stats_and_metrics(pp_sim: PPSim, make_client: MakeClient) -> None:
    """No history exists: what is sent while the socket is down is lost, so the time down is counted."""
    import math
    import threading
    import time

    sim = pp_sim()
    client = make_client("pumpportal", pp_url(sim), channels={"new_tokens": {}}, stale_timeout=60).start()
    sim.wait_for_connections("pumpportal", 1, subscribed=True)

    def conn() -> dict[str, Any]:
        stats: dict[str, Any] = client.stats()["connections"][0]
        return stats

    def reopened(n: int) -> bool:
        return bool(conn()["connects"] == n and conn()["state"] == "open")

    assert (conn()["down_seconds"], conn()["down"]) == (0.0, False)  # not counted before the first opening
    sim.drop("pumpportal")
    wait_until(lambda: reopened(2), what="the reconnect after a drop")
    after_drop = conn()["down_seconds"]
    assert 0 < after_drop < math.inf and conn()["down"] is False
    assert conn()["down_seconds"] == after_drop  # open again: it no longer grows

    downtime = 2.0
    started = time.monotonic()
    restart = threading.Thread(target=sim.restart, args=("pumpportal", downtime))
    restart.start()
    try:
        wait_until(lambda: conn()["down"] and conn()["down_seconds"] - after_drop > 0.5, what="down, and counting")
    finally:
        restart.join(30)
    wait_until(lambda: reopened(3), what="the reconnect after the restart")
    bound = time.monotonic() - started
    grown = conn()["down_seconds"] - after_drop
    # Down from the drop (after `started`) to the reopening (before `bound`), and no sooner than the server listens.
    assert downtime - 0.5 <= grown <= bound and conn()["down"] is False
    labels = (("connection", "0"), ("provider", "pumpportal"))
    assert scrape(client)[("pumpsync_connection_down_seconds_total", labels)] == conn()["down_seconds"]
    client.close()
    assert conn()["down"] is False and conn()["down_seconds"] == after_drop + grown  # closing is no disconnect
