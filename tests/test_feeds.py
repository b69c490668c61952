"""The event-feed seam (issue 24 item 4): a source of events (``ProviderSpec.feed``) runs a feed
session on the connection's thread: its events reach the consumer, its control outputs are handled
as a dialect's, its failures as a transport's, and ``consumed`` hears when the consumer is done with
an event. Scripted feeds, registered as providers of their own (no network: a feed is not one)."""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

import pumpsync
from pumpsync.errors import AuthenticationError, EndOfStream
from pumpsync.events import Event
from pumpsync.providers import PROVIDERS, replay
from pumpsync.providers.base import Fatal, Malformed, Output, Subscription
from pumpsync.providers.spec import ConnectFailed, TransportClosed
from tests.conftest import FAST, wait_until

TIMINGS = {**FAST, "backoff_initial": 0.01, "backoff_max": 0.05}


def event(i: int) -> Event:
    return Event(
        kind="trade", provider="toy", mint=f"Mint{i}", signature=f"Sig{i}", slot=100 + i, timestamp=None,
        received_at=1_700_000_000_000 + i, connection=0, backfill=False, raw={}, channel=None,
    )  # fmt: skip


Step = list[Output] | BaseException | Callable[[], list[Output]]


class Script:
    """What the scripted feed does: per session, ``open`` raises ``opens[n]`` if there is one;
    each read takes the next step (outputs, or an exception to raise); an exhausted script reads
    ``[]`` every 20 ms. Shared by the client's feeds (one per connection slot)."""

    def __init__(self, steps: list[Step], opens: list[BaseException | None] | None = None) -> None:
        self.steps = list(steps)
        self.opens = list(opens or [])
        self.opened = 0
        self.reads = 0
        self.aborts = 0
        self.shutdowns = 0
        self.consumed: list[str | None] = []
        self.stop = threading.Event()


SCRIPT = Script([])


class ToyFeed:
    acknowledges: ClassVar[bool] = False

    def __init__(self, config: Any, index: int) -> None:
        self.script = SCRIPT

    def open(self, subscriptions: list[Subscription]) -> None:
        script = self.script
        script.opened += 1
        failure = script.opens.pop(0) if script.opens else None
        if failure is not None:
            raise failure
        self.script.stop.clear()

    def read(self) -> list[Output]:
        script = self.script
        script.reads += 1
        if script.stop.is_set():
            raise TransportClosed("aborted")
        if not script.steps:
            script.stop.wait(0.02)
            return []
        step = script.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step() if callable(step) else step

    def consumed(self, event: Event) -> None:
        self.script.consumed.append(event.signature)

    def abort(self) -> None:
        self.script.aborts += 1
        self.script.stop.set()

    def shutdown(self) -> None:
        self.script.shutdowns += 1


class AckingFeed(ToyFeed):
    acknowledges: ClassVar[bool] = True


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., pumpsync.Client]]:
    """A client of the provider "toy", whose feed follows the script given."""
    clients: list[pumpsync.Client] = []

    def make(script: Script, feed: type[ToyFeed] = ToyFeed, **options: Any) -> pumpsync.Client:
        global SCRIPT
        SCRIPT = script
        spec = dataclasses.replace(replay.SPEC, name="toy", check=None, feed=feed, options={})
        monkeypatch.setitem(PROVIDERS, "toy", spec)
        client = pumpsync.Client("toy", url="file:toy", **{**TIMINGS, **options})  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_events_and_control_outputs_arrive_in_order_and_the_end_ends_the_stream(toy: Any) -> None:
    script = Script([[event(0), event(1)], [Malformed("invalid_fields"), event(2)], [], [event(3)],
                     [Fatal(EndOfStream("the toy has ended"))]])  # fmt: skip
    with toy(script) as client:
        got = [client.get(timeout=10) for _ in range(4)]
        with pytest.raises(EndOfStream, match="the toy has ended"):
            client.get(timeout=10)
        stats = client.stats()["connections"][0]
    assert [e.signature for e in got] == ["Sig0", "Sig1", "Sig2", "Sig3"]
    assert stats["malformed"] == {"invalid_fields": 1} or stats["malformed"].get("invalid_fields") == 1
    assert stats["frames"] == 6  # one per item read: four events, the malformed one, the end
    assert script.opened == 1  # an end is not retried


def test_consumed_hears_of_each_event_when_the_consumer_is_done_with_it(toy: Any) -> None:
    script = Script([[event(0), event(1), event(2)]])
    with toy(script, AckingFeed) as client:
        assert client.get(timeout=10).signature == "Sig0"
        assert script.consumed == []  # in hand: not consumed yet
        assert client.get(timeout=10).signature == "Sig1"
        assert script.consumed == ["Sig0"]
        client.get(timeout=10)
        with pytest.raises(queue.Empty):  # asking for the next one: the one in hand is consumed, nothing comes
            client.get(timeout=0.05)
        assert script.consumed == ["Sig0", "Sig1", "Sig2"]
    assert script.consumed == ["Sig0", "Sig1", "Sig2"]  # nothing twice at close


def test_closing_consumes_the_event_in_hand_and_a_feed_that_does_not_acknowledge_hears_nothing(toy: Any) -> None:
    script = Script([[event(0), event(1)]])
    with toy(script, AckingFeed) as client:
        client.get(timeout=10)
    assert script.consumed == ["Sig0"]
    quiet = Script([[event(0), event(1)]])
    with toy(quiet) as client:
        client.get(timeout=10)
        client.get(timeout=10)
    assert quiet.consumed == []


def test_only_a_feed_that_acknowledges_is_refused_as_one_of_several_sources(toy: Any) -> None:
    """Several sources share one stream: which source an event came from is not the consumer's to tell."""
    from pumpsync import Source

    toy(Script([])).close()  # registers the provider
    pumpsync.Client(sources=[Source("toy", url="file:toy"), Source("toy", url="file:toy")]).close()
    toy(Script([]), AckingFeed).close()
    with pytest.raises(pumpsync.errors.ConfigurationError, match="acknowledges"):
        pumpsync.Client(sources=[Source("toy", url="file:toy"), Source("toy", url="file:toy")])


def test_a_refusal_at_open_fails_the_client_once_and_is_not_retried(toy: Any) -> None:
    script = Script([], opens=[AuthenticationError("toy refused the password", provider="toy")])
    with toy(script) as client:
        with pytest.raises(AuthenticationError, match="toy refused the password"):
            client.get(timeout=10)
        assert isinstance(client.error, AuthenticationError)
    assert script.opened == 1


def test_a_failed_open_is_retried_and_a_dropped_feed_reconnects(toy: Any) -> None:
    down = ConnectFailed("toy: connection refused")
    script = Script([[event(0)], TransportClosed("toy: reset"), [event(1)]], opens=[down, down])
    with toy(script) as client:
        got = [client.get(timeout=10) for _ in range(2)]
        stats = client.stats()["connections"][0]
    assert [e.signature for e in got] == ["Sig0", "Sig1"]
    assert script.opened == 4  # two refused, the first session, the one after the drop
    reasons = {reason.split(":")[0] for reason in stats["disconnects"]}
    assert {"connect_failed", "dropped"} <= reasons, stats["disconnects"]
    assert script.shutdowns >= 3  # every session ends with shutdown, a failed open too


def test_a_bug_in_a_feed_is_counted_and_its_connection_reconnects(toy: Any) -> None:
    script = Script([RuntimeError("a bug in the feed"), [event(0)]])
    with toy(script) as client:
        assert client.get(timeout=10).signature == "Sig0"
        assert client.stats()["thread_failures"]["connection"] == 1
    assert script.opened == 2


def test_a_feed_that_stops_answering_is_aborted_as_stale_and_reopened(toy: Any) -> None:
    stuck = threading.Event()

    def hang() -> list[Output]:
        SCRIPT.stop.wait(30)  # returns when aborted
        stuck.set()
        raise TransportClosed("aborted while stuck")

    script = Script([[event(0)], hang, [event(1)]])
    with toy(script, stale_timeout=0.5, pong_timeout=0.2) as client:
        got = [client.get(timeout=10) for _ in range(2)]
        wait_until(lambda: stuck.is_set(), what="the stuck read to be aborted")
        disconnects = client.stats()["connections"][0]["disconnects"]
    assert [e.signature for e in got] == ["Sig0", "Sig1"]
    assert any(key.startswith("stale") for key in disconnects), disconnects
    assert script.aborts >= 1


def test_a_quiet_feed_that_answers_is_alive(toy: Any) -> None:
    """Every read that returns proves the feed alive: an empty one too (no pings, no fake pongs)."""
    script = Script([[event(0)]])
    with toy(script, stale_timeout=0.3, pong_timeout=0.1) as client:
        client.get(timeout=10)
        start = script.reads
        wait_until(lambda: script.reads >= start + 40, what="forty empty reads (0.8 s, well past stale_timeout)")
        assert client.ready
    assert script.opened == 1  # never judged stale
