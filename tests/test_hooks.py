"""Callbacks, the third way (issue 28): run on one thread of their own, never a reader thread;
an exception is counted and logged, never the end of the client; notices that do not fit are counted."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest

import pumpsync
from pumpsync._hooks import Hooks
from tests.conftest import FAST, wait_until


def test_on_event_and_on_connect_run_on_the_hooks_thread(sim: Any) -> None:
    events: list[pumpsync.Event] = []
    connects: list[pumpsync.ConnectInfo] = []
    threads: set[str] = set()

    def on_event(event: pumpsync.Event) -> None:
        threads.add(threading.current_thread().name)
        events.append(event)

    def on_connect(info: pumpsync.ConnectInfo) -> None:
        threads.add(threading.current_thread().name)
        connects.append(info)

    with pumpsync.connect(
        "openpump", api_key="k", url=sim.url("openpump"), on_event=on_event, on_connect=on_connect, **FAST
    ) as client:
        sim.wait_for_connections("openpump", 1)
        sim.emit(5, "launch")
        wait_until(lambda: len(events) >= 5, what="five events through on_event")
        wait_until(lambda: connects, what="on_connect")
    assert connects[0].source == "openpump" and connects[0].connection == 0 and not connects[0].reconnect
    assert "k" not in connects[0].url.split("//")[0] and "api_key" not in connects[0].url
    assert threads == {"pumpsync-hooks"}
    assert client.stats()["hooks"]["calls"]["on_event"] >= 5


def test_a_raising_callback_is_counted_and_logged_once_and_the_client_goes_on(
    sim: Any, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[pumpsync.Event] = []

    def on_event(event: pumpsync.Event) -> None:
        seen.append(event)
        raise ValueError("my bug")

    with pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"), on_event=on_event, **FAST) as client:
        sim.wait_for_connections("openpump", 1)
        sim.emit(3, "launch")
        wait_until(lambda: len(seen) >= 3, what="events after the first exception")
        assert client.stats()["hooks"]["errors"]["on_event"] == len(seen)
        assert client.ready or client.connected
    logged = [r for r in caplog.records if "on_event raised ValueError: my bug" in r.getMessage()]
    assert len(logged) == 1  # once a minute at most


def test_a_slow_callback_never_stalls_the_reader(sim: Any) -> None:
    release = threading.Event()
    started = threading.Event()

    def on_event(event: pumpsync.Event) -> None:
        started.set()
        release.wait(30)

    with pumpsync.connect("openpump", api_key="k", url=sim.url("openpump"), on_event=on_event, **FAST) as client:
        sim.wait_for_connections("openpump", 1)
        sim.emit(1, "launch")
        assert started.wait(10)
        frames = client.stats()["connections"][0]["frames"]
        sim.emit(5, "launch")
        wait_until(lambda: client.stats()["connections"][0]["frames"] > frames, what="frames read meanwhile")
        wait_until(lambda: client.queue.qsize() >= 1, what="events queued for the callback")
        release.set()


def test_disconnect_and_gap_hooks_after_a_dropped_connection(sim: Any) -> None:
    disconnects: list[pumpsync.DisconnectInfo] = []
    gaps: list[pumpsync.GapReport] = []
    connects: list[pumpsync.ConnectInfo] = []
    with pumpsync.connect(
        "openpump", api_key="k", url=sim.url("openpump"), on_disconnect=disconnects.append,
        on_gap=gaps.append, on_connect=connects.append, **FAST,
    ):  # fmt: skip
        sim.wait_for_connections("openpump", 1)
        sim.drop("openpump")
        wait_until(lambda: disconnects and gaps, what="on_disconnect and on_gap")
    assert disconnects[0].source == "openpump" and disconnects[0].connection == 0 and disconnects[0].reason
    gap = gaps[0]
    assert gap.source == "openpump" and gap.outcome == "lost"  # OpenPump has no history
    assert gap.since_slot is None and gap.closed_at is not None and gap.opened_at <= gap.closed_at
    assert connects[-1].reconnect


def test_a_named_source_with_history_reports_its_gap_and_its_recovery(sim: Any) -> None:
    # One source with history (Anaxer's REST), named: its on_gap notices are the recovery's
    # GapReports. (With a second source the Anaxer copies would be duplicates, never positions.)
    connects: list[pumpsync.ConnectInfo] = []
    gaps: list[pumpsync.GapReport] = []
    client = pumpsync.Client(
        sources=[
            pumpsync.Source("anaxer", name="ax", api_key="k", url=sim.url("anaxer"), rest_url=sim.rest_url("anaxer")),
        ],
        on_connect=connects.append,
        on_gap=gaps.append,
        **FAST,
    )
    with client:
        wait_until(lambda: {c.source for c in connects} == {"ax"}, what="the source's on_connect")
        sim.wait_for_connections("anaxer", 1, subscribed=True)
        sim.emit(2, kind="trade")
        # A gap has a beginning only once the source delivered something (its position).
        wait_until(lambda: _next_provider(client) == "anaxer", what="an anaxer event")
        sim.drop("anaxer")
        sim.emit(2, kind="trade")
        wait_until(
            lambda: any(g.source == "ax" and g.outcome == "recovered" for g in gaps), what="the anaxer gap recovered"
        )
    assert all(g.provider == "anaxer" for g in gaps), gaps
    assert "hooks" in client.stats()


def _next_provider(client: pumpsync.Client) -> str | None:
    try:
        return client.get(timeout=0.5).provider
    except queue.Empty:
        return None


def test_close_from_a_callback_ends_everything(sim: Any) -> None:
    holder: dict[str, pumpsync.Client] = {}
    calls: list[int] = []

    def on_event(event: pumpsync.Event) -> None:
        calls.append(1)
        holder["client"].close()

    client = pumpsync.Client("openpump", api_key="k", url=sim.url("openpump"), on_event=on_event, **FAST)
    holder["client"] = client
    client.start()
    sim.wait_for_connections("openpump", 1)
    sim.emit(3, "launch")
    wait_until(lambda: calls, what="the callback")
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "pumpsync-hooks"], what="the hooks' end")
    assert len(calls) == 1


def test_notices_that_do_not_fit_are_counted_and_a_bad_hook_is_refused() -> None:
    hooks = Hooks({"on_connect": lambda info: None}, capacity=2)
    for i in range(5):
        hooks.notify("on_connect", i)
    assert hooks.dropped == 3
    hooks.notify("on_gap", 1)  # no such callback: nothing queued, nothing dropped
    assert hooks.dropped == 3
    with pytest.raises(pumpsync.ConfigurationError, match="on_event"):
        pumpsync.Client("openpump", api_key="k", on_event="print")  # type: ignore[arg-type]


def test_the_counters_start_with_every_hook_at_zero() -> None:
    hooks = Hooks({"on_gap": lambda info: None})
    assert hooks.snapshot() == {"calls": {"on_gap": 0}, "errors": {"on_gap": 0}, "dropped": 0}
