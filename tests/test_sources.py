"""Several sources, one stream, over real sockets: each event once, none lost while one source
carried it, the race measured, a failed source reported while the others go on."""

from __future__ import annotations

import queue
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import pumpsync
import pumpsync.providers
from pumpsync import Source
from pumpsync.errors import AllSourcesFailed, AuthenticationError, ConfigurationError, SourceFailed, UsageError
from pumpsync.simulator import Simulator
from tests.conftest import FAST, wait_until

ANAXER_CHANNELS = {"creations": {}, "trades": {}, "graduations": {}}


def source(sim: Simulator, provider: str, **options: Any) -> Source:
    if provider == "anaxer":
        options.setdefault("channels", ANAXER_CHANNELS)
        options.setdefault("rest_url", sim.rest_url("anaxer"))
    return Source(provider, api_key=f"{provider}-key", url=sim.url(provider), **options)


def launches(sim: Simulator, provider: str) -> set[str]:
    records = sim.history(provider)
    if provider == "openpump":
        return {r["mint"] for r in records if r.get("type") == "new_token"}
    return {r["mint"] for r in records if r.get("type") == "created"}


class Reader:
    """The consumer: everything it got, errors apart."""

    def __init__(self, client: pumpsync.Client) -> None:
        self.client = client
        self.events: list[pumpsync.Event] = []
        self.errors: list[pumpsync.PumpsyncError] = []

    def pump(self, seconds: float = 0.1) -> Reader:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.events.append(self.client.get(timeout=0.02))
            except queue.Empty:
                pass
            except pumpsync.PumpsyncError as exc:
                self.errors.append(exc)
                if exc.fatal:
                    break
        return self

    def mints(self, kind: str = "new_token") -> Counter[str]:
        return Counter(e.mint for e in self.events if e.kind == kind and e.mint is not None)


@pytest.fixture
def two() -> Iterator[Simulator]:
    with Simulator(providers=("openpump", "anaxer"), rate=0, seed=11, enrich_delay=0) as sim:
        yield sim


def subscribed(sim: Simulator, *providers: str) -> None:
    for provider in providers:
        sim.wait_for_connections(provider, 1, subscribed=True, timeout=15)
    wait_until(lambda: len(sim.connections("anaxer")[0].subscriptions) == 3, what="anaxer's 3 subscriptions")


def test_each_launch_once_none_lost_and_the_faster_source_first(two: Simulator) -> None:
    sim = two
    sim.set_feed("openpump", delay=(0.0, 0.02), loss=0.2)
    sim.set_feed("anaxer", delay=(0.4, 0.5), loss=0.2)
    client = pumpsync.Client(sources=[source(sim, "openpump"), source(sim, "anaxer")], **FAST)
    reader = Reader(client.start())
    try:
        subscribed(sim, "openpump", "anaxer")
        for _ in range(6):
            sim.emit(10, kind="launch")
            reader.pump(0.05)
        # A last launch both carry: batches never overtake, so once it is out everything is.
        sim.set_feed("openpump", delay=(0.0, 0.02))
        sim.set_feed("anaxer", delay=(0.4, 0.5))
        (last, *_) = [e for e in sim.emit(1, kind="launch") if type(e).__name__ == "Launch"]
        wait_until(lambda: last.mint in launches(sim, "anaxer") and last.mint in launches(sim, "openpump"))
        fast, slow = launches(sim, "openpump"), launches(sim, "anaxer")
        carried = fast | slow
        wait_until(lambda: set(reader.pump(0.05).mints()) >= carried, what="every carried launch")
        reader.pump(0.3)  # anything more would be a duplicate
        assert reader.mints() == Counter(carried)  # each once, none lost, nothing invented
        assert fast - slow and slow - fast  # each source lost some the other carried
        trades = Counter((e.signature, e.side) for e in reader.events if e.kind == "trade")
        assert set(trades.values()) == {1}
        assert reader.errors == []
    finally:
        client.close()
    assert client.race is not None
    race = client.race.snapshot()
    # The configured delays decide: openpump first for every launch it carried, anaxer for the rest.
    assert race["first"]["openpump"]["new_token"] == len(fast)
    assert race["first"]["anaxer"]["new_token"] == len(slow - fast)
    assert race["missed"]["openpump"]["new_token"] == len(slow - fast)
    assert race["missed"]["anaxer"]["new_token"] == len(fast - slow)
    assert race["leads"]["openpump>anaxer"]["new_token"]["count"] == len(fast & slow)
    assert race["leads"]["openpump>anaxer"]["new_token"]["median_ms"] > 300  # anaxer is 0.4 - 0.5 s late
    summary = client.race.summary()
    assert f"openpump first for {round(100 * len(fast) / len(carried))} %" in summary
    stats = client.stats()
    assert stats["sources"]["anaxer"]["duplicates"] + stats["sources"]["openpump"]["duplicates"] > 0
    assert stats["delivered"] == len(reader.events)


def test_a_failed_source_is_reported_and_the_others_go_on(two: Simulator) -> None:
    sim = two
    sim.reject_next(1, provider="openpump", status=401)
    client = pumpsync.Client(sources=[source(sim, "openpump"), source(sim, "anaxer")], **FAST)
    reader = Reader(client.start())
    try:
        wait_until(lambda: reader.pump(0.05).errors, what="the refused source's report")
        (error,) = reader.errors
        assert isinstance(error, SourceFailed) and not error.fatal
        assert error.source == "openpump" and isinstance(error.error, AuthenticationError)
        assert client.error is None and list(client.failed_sources) == ["openpump"]
        subscribed(sim, "anaxer")
        assert client.ready  # degraded, not dead
        events = sim.emit(5, kind="launch")
        mints = {e.mint for e in events if type(e).__name__ == "Launch"}
        wait_until(lambda: set(reader.pump(0.05).mints()) >= mints, what="anaxer's launches")
        sim.reject_next(50, provider="anaxer", status=401)
        sim.drop(provider="anaxer")
        wait_until(lambda: reader.pump(0.05).errors[-1:] and reader.errors[-1].fatal, what="the end")
        assert [type(e) for e in reader.errors] == [SourceFailed, SourceFailed, AllSourcesFailed]
        assert isinstance(client.error, AllSourcesFailed)
        assert set(client.error.errors) == {"openpump", "anaxer"}
        with pytest.raises(AllSourcesFailed):
            client.get(timeout=1)
    finally:
        client.close()


def test_options_keys_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUMPSYNC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        pumpsync.Client("anaxer", sources=[Source("openpump", api_key="k")])
    with pytest.raises(ConfigurationError):
        Source("anaxer", api_key="k", queue_size=10)  # one queue for all: the client's option
    with pytest.raises(ConfigurationError, match="race_window"):
        pumpsync.Client(sources=[Source("openpump", api_key="k")], race_window=0)
    with pytest.raises(ConfigurationError, match="queue_size"):  # refused before anything is sized by it
        pumpsync.Client(sources=[Source("openpump", api_key="k")], queue_size=10**12)
    with pytest.raises(ConfigurationError, match="PUMPSYNC_ANAXER_API_KEY"):  # the one without a key is named
        pumpsync.Client(sources=[Source("openpump", api_key="k"), Source("anaxer")])
    with pytest.raises(ConfigurationError, match="give each Source its own"):  # two need one: never share it
        pumpsync.Client(sources=[Source("openpump"), Source("anaxer")], api_key="shared")
    client = pumpsync.Client(
        sources=[Source("anaxer", api_key="a"), Source("anaxer", api_key="b"), Source("openpump", api_key="c")],
        queue_size=50,
        stale_timeout=30,
    )
    assert isinstance(client, pumpsync.Client)
    assert list(client.members) == ["anaxer", "anaxer-2", "openpump"]
    assert all(m.config.stale_timeout == 30 and m.config.queue_size == 50 for m in client.members.values())
    assert "'b'" not in repr(Source("anaxer", api_key="b")) and "b" not in repr(client)
    with pytest.raises(UsageError):
        client.subscribe("trades")
    client.close()


def test_single_provider_use_is_unchanged(two: Simulator) -> None:
    client = pumpsync.Client("openpump", api_key="k", url=two.url("openpump"), **FAST)
    assert type(client) is pumpsync.Client and client.race is None
    client.close()


def test_metrics_show_each_source_and_the_race(two: Simulator) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from pumpsync.metrics import start_metrics_server

    sim = two
    sim.reject_next(1, provider="openpump", status=401)
    client = pumpsync.Client(sources=[source(sim, "openpump"), source(sim, "anaxer")], race_window=0.2, **FAST)
    server = start_metrics_server(client, "127.0.0.1:0")
    reader = Reader(client.start())
    try:
        subscribed(sim, "anaxer")
        sim.emit(3, kind="launch")
        wait_until(lambda: len(reader.pump(0.05).mints()) >= 3 and reader.errors, what="launches and the failure")

        def scrape() -> dict[str, Any]:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
            return {f.name: f for f in text_string_to_metric_families(text)}

        def first_by_anaxer() -> dict[str, Any] | None:
            families = scrape()
            samples = families["pumpsync_source_first_deliveries"].samples
            won = {s.labels["source"]: s.value for s in samples if s.labels["kind"] == "new_token"}
            return families if won == {"openpump": 0, "anaxer": 3} else None

        families = wait_until(first_by_anaxer, what="the race decided")
        up = {s.labels["source"]: s.value for s in families["pumpsync_source_up"].samples}
        assert up == {"openpump": 0.0, "anaxer": 1.0}
        conns = {(s.labels["provider"], s.labels["connection"]) for s in families["pumpsync_connection_up"].samples}
        assert conns == {("openpump", "0"), ("anaxer", "0")}  # one series per source's connection
        for family in families.values():
            keys = [(s.name, tuple(sorted(s.labels.items()))) for s in family.samples]
            assert len(keys) == len(set(keys)), family.name
        assert {"pumpsync_source_lead_seconds", "pumpsync_source_missed_events", "pumpsync_source_only_events"} <= set(
            families
        )
    finally:
        server.close()
        client.close()


def test_connect_takes_sources_too(two: Simulator) -> None:
    with pumpsync.connect(sources=[source(two, "openpump"), source(two, "anaxer")], **FAST) as stream:
        subscribed(two, "openpump", "anaxer")
        (launch, *_) = [e for e in two.emit(1, kind="launch") if type(e).__name__ == "Launch"]
        event = next(e for e in stream if e.kind == "new_token")
        assert event.mint == launch.mint
    with pytest.raises(ConfigurationError):
        pumpsync.connect("openpump", sources=[source(two, "anaxer")])


@pytest.mark.skipif("pumpportal" not in pumpsync.providers.PROVIDERS, reason="no free provider registered")
def test_a_key_goes_only_to_the_source_that_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPSYNC_API_KEY", "shared-key-1234")
    monkeypatch.setenv("PUMPSYNC_OPENPUMP_API_KEY", "openpump-key-5678")
    client = pumpsync.Client(sources=[Source("pumpportal"), Source("anaxer"), Source("openpump")])
    keys = {name: m.config.api_key for name, m in client.members.items()}
    assert keys["pumpportal"] is None  # a free source: never another provider's key
    assert keys["anaxer"] is not None and keys["anaxer"].reveal() == "shared-key-1234"  # the one left needing it
    assert keys["openpump"] is not None and keys["openpump"].reveal() == "openpump-key-5678"
    client.close()
