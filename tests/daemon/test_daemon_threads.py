"""No thread of the daemon's own dies unnoticed: the dispatcher, a sink's writer and the metrics
server each report an unexpected end, which is counted (``pumpsync_daemon_thread_failures_total``,
exported at 0), logged once at ERROR with its traceback, makes ``/readyz`` answer 503, and stops the
daemon with exit status 1 (its supervisor restarts it; it resumes from the sinks' positions).

Each failure comes through a real path: a deliberately broken part (a bug that raises something
that is not an ``Exception``), against the simulator and a metrics server over real sockets.
"""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import http_get, wait_until, worktree_env
from prometheus_client.parser import text_string_to_metric_families
from test_daemon import KEY_ENV, anaxer_args

from pumpsync import Client
from pumpsync.daemon.dispatch import Dispatcher
from pumpsync.daemon.sinks import Sink
from pumpsync.daemon.watch import DAEMON_THREAD_KINDS, ThreadWatch
from pumpsync.events import Event
from pumpsync.metrics import MetricsServer, start_metrics_server
from pumpsync.metrics import _http as metrics_http


class _Bug(BaseException):
    """What a bug may raise: not even an ``Exception``."""


class _Kept(Sink):
    kind = "kept"

    def __init__(self, name: str, bug_in: str = "") -> None:
        super().__init__(name)
        self.bug_in = bug_in

    def offer(self, event: Event) -> bool:
        if self.bug_in == "offer":  # called by the dispatcher's thread
            raise _Bug("a bug in offer")
        return super().offer(event)

    def write(self, batch: list[Event]) -> None:
        if self.bug_in == "write":  # called by the sink's own thread
            raise _Bug("a bug in write")


def _samples(server: MetricsServer) -> dict[str, float]:
    status, body = http_get(server.url + "/metrics")
    assert status == 200
    return {
        s.labels["thread"]: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "pumpsync_daemon_thread_failures_total"
    }


@pytest.fixture
def parts(sim: Any) -> Iterator[dict[str, Any]]:
    client = Client(
        "openpump", api_key="k", url=sim.url("openpump"), ping_interval=0.5, pong_timeout=0.5, stale_timeout=3.0
    )
    failures: list[str] = []
    made: dict[str, Any] = {"client": client, "failures": failures, "watch": ThreadWatch(failures.append)}
    yield made
    client.close(timeout=5)
    if "dispatcher" in made:
        made["dispatcher"].stop()
        assert made["dispatcher"].join(5)
    if "metrics" in made:
        made["metrics"].close()
    if "sink" in made:
        made["sink"].close(time.monotonic() + 5)
        assert made["sink"].join(5)


def _start(parts: dict[str, Any], sink: Sink) -> tuple[ThreadWatch, MetricsServer]:
    client, watch = parts["client"], parts["watch"]
    parts["sink"] = sink
    sink.start(watch.reporter("sink", f"sink {sink.name}"))
    parts["metrics"] = metrics = start_metrics_server(client, "127.0.0.1:0", [sink], watch)
    reporter = watch.reporter("dispatcher", "dispatcher")
    parts["dispatcher"] = dispatcher = Dispatcher(client.queue, [sink], lambda error: None, reporter)
    dispatcher.start()
    client.start()
    wait_until(lambda: http_get(metrics.url + "/readyz")[0] == 200, what="ready")
    assert _samples(metrics) == dict.fromkeys(DAEMON_THREAD_KINDS, 0.0)  # exported at 0
    return watch, metrics


@pytest.mark.parametrize("bug_in", ["write", "offer", "metrics"])
def test_a_daemon_thread_that_dies_is_counted_logged_once_and_makes_it_not_ready(
    bug_in: str, parts: dict[str, Any], sim: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, name = {"write": ("sink", "sink kept"), "offer": ("dispatcher", "dispatcher"),
                  "metrics": ("metrics", "metrics server")}[bug_in]  # fmt: skip
    caplog.set_level(logging.ERROR, logger="pumpsync.daemon")
    sink = _Kept("kept")
    watch, metrics = _start(parts, sink)
    if bug_in == "metrics":

        def broken(self: Any) -> None:  # serve_forever calls it on each turn
            raise _Bug("a bug in the metrics server")

        monkeypatch.setattr(metrics_http._Server, "service_actions", broken)
    else:
        sink.bug_in = bug_in
        sim.emit(3)
    wait_until(lambda: watch.counts()[kind] == 1, what=f"the {name} thread's end to be counted")
    assert parts["failures"] == [wait_until(lambda: parts["failures"], what="the runner told")[0]]
    assert parts["failures"][0].startswith(f"the {name} thread ended unexpectedly (_Bug: a bug in")
    watch.failed(kind, name, None)  # the runner's loop noticing the same dead thread: not counted twice
    assert watch.counts() == {k: int(k == kind) for k in DAEMON_THREAD_KINDS}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and name in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None and errors[0].exc_info[0] is _Bug
    if bug_in != "metrics":  # (a dead metrics server answers nothing: the scraper's "down" is the signal)
        status, body = http_get(metrics.url + "/readyz")
        assert status == 503 and f"thread {name} ended" in body
        assert _samples(metrics) == {k: float(k == kind) for k in DAEMON_THREAD_KINDS}
    if bug_in == "write":  # what it held, and what is offered after, is counted as dropped
        offered = 3 + 2
        sim.emit(2)
        wait_until(lambda: sink.written + sink.dropped >= offered, what="every event accounted for")
        assert sink.written == 0


_BREAKER = """
    import pumpsync.daemon.sinks.function as function


    class Bug(BaseException):
        pass


    def offer(self, event):
        raise Bug("a bug in offer")


    function.CallableSink.offer = offer  # the dispatcher calls it: its thread dies at the first event


    def accept(event):
        pass
"""


def test_the_daemon_stops_with_status_1_when_its_dispatcher_dies(sim: Any, start_daemon: Any, tmp_path: Path) -> None:
    (tmp_path / "breaker.py").write_text(textwrap.dedent(_BREAKER))
    daemon = start_daemon(anaxer_args(sim, "--sink", "callable:breaker:accept"), env=worktree_env(tmp_path, **KEY_ENV))
    daemon.wait_streaming(sim)
    assert daemon.sample("pumpsync_daemon_thread_failures_total", thread="dispatcher") == 0
    sim.emit(1)
    assert daemon.proc.wait(30) == 1
    errors = [line for line in daemon.stderr.splitlines() if "ERROR" in line]
    assert len([e for e in errors if "the dispatcher thread ended unexpectedly (Bug: a bug in offer)" in e]) == 1
    assert 'raise Bug("a bug in offer")' in daemon.stderr  # the traceback, once
    assert daemon.stderr.count("Traceback") == 1
    assert "stopping (fatal error: the dispatcher thread ended unexpectedly" in daemon.stderr
