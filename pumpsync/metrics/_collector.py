"""The metric families, built at scrape time from the counters the client keeps.

Labelled counters whose label values are known in advance are exported at 0 from the first
scrape (event kinds, malformed-frame reasons, the provider's close codes, the common
disconnect reasons, implausible-timestamp reasons, the subscribed channels), so that a fresh
daemon's dashboards show 0 rather than "No data" and ``rate()``/``increase()`` see the first
increment.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from pumpsync._race import CONFLICT_FIELDS, RaceTracker
from pumpsync._stats import IMPLAUSIBLE_REASONS, THREAD_KINDS, ClientStats, Histogram
from pumpsync._version import __version__
from pumpsync.errors import ConfigurationError
from pumpsync.events import KINDS, UNKNOWN
from pumpsync.providers import dialect_class, provider_spec
from pumpsync.providers.base import MALFORMED_REASONS

if TYPE_CHECKING:
    from pumpsync.client import Client

STATES = ("idle", "connecting", "open", "backoff", "failed", "closed")
# Provider-chosen strings (notice codes, channel names) become labels only up to this many
# distinct values; the rest are summed under "other" so a misbehaving server cannot blow up
# the series count.
_MAX_FREE_LABELS = 32

# How sessions most often end whatever the provider: the socket dropped, the supervisor found it
# stale, or a ping went unanswered. With the provider's close codes they are exported at 0.
_COMMON_DISCONNECTS = ("dropped", "stale", "pong_timeout", "no_data")

# Kinds that take part in a race between sources (an unknown object has no identity to match).
RACE_KINDS = tuple(kind for kind in KINDS if kind != UNKNOWN)

# How long a scrape lets go of the GIL between metric families (see PumpsyncCollector.collect).
_SCRAPE_YIELD = 50e-6


class SinkStats(Protocol):
    """What the collector reads from a sink (``pumpsync.daemon.sinks.Sink`` provides it)."""

    @property
    def name(self) -> str: ...
    @property
    def written(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def healthy(self) -> bool: ...


def _copy(mapping: Mapping[Any, int]) -> dict[Any, int]:
    # dict() of a Counter is one C-level copy under the GIL: safe while a connection thread adds keys.
    return dict(mapping)


def _bounded(mapping: Mapping[str, int]) -> dict[str, int]:
    items = sorted(_copy(mapping).items())
    if len(items) <= _MAX_FREE_LABELS:
        return dict(items)
    kept = dict(items[: _MAX_FREE_LABELS - 1])
    kept["other"] = sum(n for _, n in items[_MAX_FREE_LABELS - 1 :])
    return kept


def known_disconnects(provider: str) -> list[tuple[str, str]]:
    """The (reason, code) labels of ``pumpsync_disconnects_total`` exported at 0: the common
    reasons, and ``closed`` with every code of the provider's close-policy table."""
    try:
        policies = dialect_class(provider).close_policies
    except ConfigurationError:  # a provider we cannot look up: the common reasons only
        policies = {}
    return [(reason, "") for reason in _COMMON_DISCONNECTS] + [("closed", str(code)) for code in sorted(policies)]


def _spec_metrics(provider: str) -> Any:
    """The provider's own process-wide collector factory (``ProviderSpec.metrics``), or None."""
    try:
        return provider_spec(provider).metrics
    except ConfigurationError:
        return None


def known_filter_reasons(provider: str) -> tuple[str, ...]:
    """The reasons of ``pumpsync_filtered_frames_total`` exported at 0: those the provider's spec declares."""
    try:
        return provider_spec(provider).filter_reasons
    except ConfigurationError:
        return ()


def known_malformed_reasons(provider: str) -> tuple[str, ...]:
    """The reasons of ``pumpsync_malformed_frames_total`` exported at 0: the common ones and the provider's own."""
    try:
        return (*MALFORMED_REASONS, *provider_spec(provider).malformed_reasons)
    except ConfigurationError:
        return MALFORMED_REASONS


def _with_zeros(known: Iterable[Any], counts: Mapping[Any, int]) -> list[tuple[Any, int]]:
    return sorted((key, counts.get(key, 0)) for key in set(known) | set(counts))


def _by_label(
    name: str, doc: str, provider: list[str], label: str, counts: Iterable[tuple[str, int]]
) -> CounterMetricFamily:
    """A counter family of one provider's counts by ``label`` (the known values included, at zero)."""
    family = CounterMetricFamily(name, doc, labels=["provider", label])
    for value, n in counts:
        family.add_metric([*provider, value], n)
    return family


def _buckets(hist: Histogram) -> tuple[list[tuple[str, float]], float]:
    # The +Inf bucket doubles as _count, so count and buckets always agree even mid-update.
    return [(le, float(n)) for le, n in hist.cumulative()], hist.sum


class PumpsyncCollector:
    """A prometheus_client custom collector over one client (and optionally the daemon's sinks)."""

    def __init__(self, client: Client, sinks: Sequence[SinkStats] | None = None) -> None:
        self.client = client
        self.sinks = list(sinks or ())
        # One member, the client itself, unless it reads several sources (each labelled by its name).
        self._members = list(client.members.values())
        self._disconnects = {m.raw_stats.provider: known_disconnects(m.config.provider) for m in self._members}
        self._channels = list(dict.fromkeys(sub.channel for m in self._members for sub in m.config.channels))
        self._filter_reasons = {m.raw_stats.provider: known_filter_reasons(m.config.provider) for m in self._members}
        self._malformed_reasons = {
            m.raw_stats.provider: known_malformed_reasons(m.config.provider) for m in self._members
        }

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed and unique; skip registration-time collection

    def collect(self) -> Iterator[Metric]:
        families = chain(
            self._build_info(),
            self._client_metrics(),
            self._connection_metrics(),
            self._race_metrics(),
            self._gap_metrics(),
            self._sink_metrics(),
        )
        for family in families:
            yield family
            # Rendering a scrape takes 1-2 ms of pure Python, and a thread that wants the GIL
            # meanwhile waits for it (up to the 5 ms switch interval). Sleeping between families
            # hands the GIL to the connection threads, so that a scrape delays an event by the
            # cost of one family (tens of µs), not of the whole scrape.
            time.sleep(_SCRAPE_YIELD)

    def _build_info(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "pumpsync_build_info", "pumpsync version and Python version; always 1.", labels=["version", "python"]
        )
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info

    def _client_metrics(self) -> Iterator[Metric]:
        stats = self.client.raw_stats
        p = [stats.provider]

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=["provider"])
            family.add_metric(p, value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=["provider"])
            family.add_metric(p, value)
            return family

        yield gauge("pumpsync_start_time_seconds", "When the client was created, epoch seconds.", stats.started_at)
        yield gauge("pumpsync_queue_depth", "Items waiting in the client queue.", self.client.queue.qsize())
        yield gauge("pumpsync_queue_capacity", "Events the client queue holds before dropping.", stats.capacity)
        yield gauge("pumpsync_held_events", "Live events held back behind a running backfill.", stats.held)
        yield counter("pumpsync_delivered_events_total", "Events put on the client queue.", stats.delivered)
        yield counter(
            "pumpsync_duplicate_events_total", "Events suppressed as duplicates (redundant connections, backfill).",
            stats.duplicates,
        )  # fmt: skip
        yield counter(
            "pumpsync_dropped_events_total", "Events dropped from a full client queue (oldest first).", stats.dropped
        )
        yield counter("pumpsync_backfill_requests_total", "Gap-recovery (REST) jobs run.", stats.backfill_requests)
        yield counter("pumpsync_backfill_events_total", "New events recovered by backfill.", stats.backfill_events)
        yield counter("pumpsync_backfill_failures_total", "Backfill jobs that failed.", stats.backfill_failures)
        history = CounterMetricFamily(
            "pumpsync_history_outcomes",
            "What the history source counted while filling gaps (items lost by reason, recovered, rate limits).",
            labels=["provider", "reason"],
        )
        for member in self._members:
            for reason, n in _bounded(member.history_stats()).items():
                history.add_metric([member.raw_stats.provider, reason], n)
        yield history
        yield from self._client_breakdowns(stats, p)

    def _client_breakdowns(self, stats: ClientStats, p: list[str]) -> Iterator[Metric]:
        """The client's labelled families: events by kind, the delay histogram, and the counts by reason."""
        yield _by_label(
            "pumpsync_events", "Events delivered (first copies), by kind.",
            p, "kind", _with_zeros(KINDS, _copy(stats.events)),
        )  # fmt: skip
        delay = HistogramMetricFamily(
            "pumpsync_event_delay_seconds", "Provider timestamp to local receipt, live events.", labels=["provider"]
        )
        buckets, total = _buckets(stats.delay)
        delay.add_metric(p, buckets, total)
        yield delay
        yield _by_label(
            "pumpsync_implausible_timestamps",
            "Live events whose provider timestamp was implausible (kept out of the delay histogram), by reason.",
            p, "reason", _with_zeros(IMPLAUSIBLE_REASONS, _copy(stats.implausible)),
        )  # fmt: skip
        yield _by_label(
            "pumpsync_thread_failures",
            "Unexpected ends of the client's threads (each fails the client, or restarts a session), by kind.",
            p, "thread", _with_zeros(THREAD_KINDS, _copy(stats.thread_failures)),
        )  # fmt: skip
        yield _by_label(
            "pumpsync_subscription_rejections", "Channels the provider refused.",
            p, "channel", _with_zeros(self._channels, _bounded(stats.rejected)),
        )  # fmt: skip
        yield _by_label(
            "pumpsync_provider_notices", "Non-fatal error reports from the provider, by code.",
            p, "reason", _bounded(stats.notices).items(),
        )  # fmt: skip

    def _connection_metrics(self) -> Iterator[Metric]:
        conn_labels = ["provider", "connection"]

        def gauge(name: str, doc: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*conn_labels, *extra])

        def counter(name: str, doc: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[*conn_labels, *extra])

        up = gauge("pumpsync_connection_up", "1 while the connection's socket is open.")
        healthy = gauge(
            "pumpsync_connection_healthy",
            "1 while open and something arrived within the stale timeout (the supervisor's verdict).",
        )
        state = gauge("pumpsync_connection_state", "1 for the connection's current state.", "state")
        since = gauge("pumpsync_connection_state_since_timestamp_seconds", "When the current state began.")
        attempts = counter("pumpsync_connection_attempts", "Connection attempts.")
        connects = counter("pumpsync_connects", "Connections opened.")
        disconnects = counter("pumpsync_disconnects", "Sessions ended, by reason and close code.", "reason", "code")
        frames = counter("pumpsync_received_frames", "Data frames received.")
        received = counter("pumpsync_received_bytes", "Bytes received.")
        malformed = counter("pumpsync_malformed_frames", "Frames that broke the protocol, by reason.", "reason")
        pings = counter("pumpsync_heartbeat_pings", "Heartbeat pings sent.")
        pongs = counter("pumpsync_heartbeat_pongs", "Heartbeat answers received.")
        rtt = HistogramMetricFamily("pumpsync_heartbeat_rtt_seconds", "Heartbeat round-trip time.", labels=conn_labels)
        last_rtt = gauge("pumpsync_heartbeat_last_rtt_seconds", "The latest heartbeat round trip.")
        last_frame = gauge("pumpsync_last_frame_timestamp_seconds", "When the connection last received anything.")
        last_event = gauge("pumpsync_last_event_timestamp_seconds", "When the connection last received an event.")
        first = counter("pumpsync_first_deliveries", "Events this connection delivered before any other.")
        for stats, conn in ((m.raw_stats, c) for m in self._members for c in m.raw_stats.connections):
            key = [stats.provider, str(conn.index)]
            current = conn.state
            up.add_metric(key, 1.0 if current == "open" else 0.0)
            healthy.add_metric(key, 1.0 if conn.healthy else 0.0)
            for name in STATES:
                state.add_metric([*key, name], 1.0 if current == name else 0.0)
            since.add_metric(key, conn.state_since)
            attempts.add_metric(key, conn.attempts)
            connects.add_metric(key, conn.connects)
            for (reason, code), n in _with_zeros(self._disconnects[stats.provider], _copy(conn.disconnects)):
                disconnects.add_metric([*key, reason, code], n)
            frames.add_metric(key, conn.frames)
            received.add_metric(key, conn.bytes)
            for reason, n in _with_zeros(self._malformed_reasons[stats.provider], _copy(conn.malformed)):
                malformed.add_metric([*key, reason], n)
            pings.add_metric(key, conn.pings_sent)
            pongs.add_metric(key, conn.pongs)
            rtt.add_metric(key, *_buckets(conn.rtt))
            first.add_metric(key, conn.first_deliveries)
            # Not known yet: no sample rather than a misleading 0.
            for family, value in ((last_rtt, conn.last_rtt), (last_frame, conn.last_frame_at)):
                if value is not None:
                    family.add_metric(key, value)
            if conn.last_event_at is not None:
                last_event.add_metric(key, conn.last_event_at)
        yield from (up, healthy, state, since, attempts, connects, disconnects, frames, received, malformed)
        yield from (pings, pongs, rtt, last_rtt, last_frame, last_event, first)

    def _race_metrics(self) -> Iterator[Metric]:
        race = self.client.race  # None: one source, no race
        if race is None:
            return
        yield from race_families(race)
        failed = self.client.failed_sources
        up = GaugeMetricFamily("pumpsync_source_up", "0 once a source has failed for good (the others go on).",
                               labels=["source"])  # fmt: skip
        for source in race.sources:
            up.add_metric([source], 0.0 if source in failed else 1.0)
        yield up

    def _gap_metrics(self) -> Iterator[Metric]:
        """What a connection did not deliver: frames filtered on purpose, time spent disconnected."""
        labels = ["provider", "connection"]
        filtered = CounterMetricFamily(
            "pumpsync_filtered_frames", "Well-formed frames left out on purpose (e.g. another launchpad's), by reason.",
            labels=[*labels, "reason"],
        )  # fmt: skip
        down = CounterMetricFamily(
            "pumpsync_connection_down_seconds",
            "Seconds the connection was not open since it first opened (events sent meanwhile may be lost).",
            labels=labels,
        )
        for stats, conn in ((m.raw_stats, c) for m in self._members for c in m.raw_stats.connections):
            key = [stats.provider, str(conn.index)]
            for reason, n in _with_zeros(self._filter_reasons[stats.provider], _bounded(conn.filtered)):
                filtered.add_metric([*key, reason], n)
            down.add_metric(key, conn.down_seconds)
        yield filtered
        yield down

    def _sink_metrics(self) -> Iterator[Metric]:
        if not self.sinks:
            return
        counters = (
            ("pumpsync_sink_events_written", "Events a sink wrote.", "written"),
            ("pumpsync_sink_events_dropped", "Events a sink could not take, or gave up on.", "dropped"),
            ("pumpsync_sink_failures", "Failed write attempts (each retry counts).", "failures"),
        )
        gauges = (
            ("pumpsync_sink_buffer_depth", "Events waiting in a sink's buffer.", "depth"),
            ("pumpsync_sink_buffer_capacity", "Events a sink's buffer holds.", "capacity"),
            ("pumpsync_sink_healthy", "1 unless the sink's last write failed.", "healthy"),
        )
        for name, doc, attr in counters:
            counter = CounterMetricFamily(name, doc, labels=["sink"])
            for sink in self.sinks:
                counter.add_metric([sink.name], float(getattr(sink, attr)))
            yield counter
        for name, doc, attr in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=["sink"])
            for sink in self.sinks:
                gauge.add_metric([sink.name], float(getattr(sink, attr)))
            yield gauge


def race_families(race: RaceTracker) -> Iterator[Metric]:
    """The race between sources: first deliveries, leads per ordered pair, events seen by one
    source only, misses. Every (source, kind) and every pair is exported, at zero until it happens."""
    race.expire()  # a quiet stream still gets its open events decided
    counts = race.counts()
    known = [(source, kind) for source in race.sources for kind in RACE_KINDS]
    for key, name, doc in (
        ("first", "pumpsync_source_first_deliveries", "Events, by the source whose copy came first, and kind."),
        ("missed", "pumpsync_source_missed_events", "Events a source carries the kind of but did not deliver live."),
        ("only", "pumpsync_source_only_events", "Events one source alone delivered though another carries the kind."),
    ):
        family = CounterMetricFamily(name, doc, labels=["source", "kind"])
        for (source, kind), n in _with_zeros(known, counts[key]):
            family.add_metric([source, kind], n)
        yield family
    conflicts = CounterMetricFamily(
        "pumpsync_source_conflicts",
        "Events whose copies from two sources disagreed, by field, the source whose copy went first, and the other.",
        labels=["field", "first", "second"],
    )
    pairs = [(a, b) for a in race.sources for b in race.sources if a != b]
    known_conflicts = [(name, a, b) for name in CONFLICT_FIELDS for a, b in pairs]
    for (name, first, second), n in _with_zeros(known_conflicts, race.conflict_counts()):
        conflicts.add_metric([name, first, second], n)
    yield conflicts
    leads = HistogramMetricFamily(
        "pumpsync_source_lead_seconds",
        "How much later the follower's copy of an event came than the leader's (the first source's).",
        labels=["leader", "follower"],
    )
    for (leader, follower), hist in sorted(race.lead_histograms().items()):
        leads.add_metric([leader, follower], *_buckets(hist))
    yield leads
    pending = GaugeMetricFamily("pumpsync_race_open_events", "Events still within the race window (undecided).")
    pending.add_metric([], race.pending)
    yield pending


def extra_collectors(sources: Iterable[object]) -> list[Collector]:
    """The collectors that sinks and transports bring along: a class with metrics of its own has a
    ``metrics_collector(sources)`` class method; it is called once, with all its instances, so that
    each metric family appears once whatever the number of sinks or connections. A transport that only
    carries a feed (``pumpsync._feed_session.FeedPort``) stands for its ``feed``."""
    groups: dict[Any, list[object]] = {}
    for source in sources:
        if not hasattr(type(source), "metrics_collector"):
            source = getattr(source, "feed", source)
        hook = getattr(type(source), "metrics_collector", None)
        if callable(hook):
            groups.setdefault(hook, []).append(source)
    return [hook(members) for hook, members in groups.items()]


def make_registry(
    client: Client, sinks: Sequence[SinkStats] | None = None, collectors: Sequence[Collector] = ()
) -> CollectorRegistry:
    """A dedicated registry: the pumpsync collector, the sinks' and transports' own collectors
    (:func:`extra_collectors`), ``collectors`` (the daemon's) and process metrics (``pumpsync_process_*``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PumpsyncCollector(client, sinks))
    for own in collectors:
        registry.register(own)
    for collector in extra_collectors([*(sinks or ()), *client.transports]):
        registry.register(collector)
    for factory in dict.fromkeys(_spec_metrics(m.config.provider) for m in client.members.values()):
        if factory is not None:
            registry.register(factory())
    ProcessCollector(namespace="pumpsync", registry=registry)
    return registry


__all__ = [
    "RACE_KINDS",
    "STATES",
    "PumpsyncCollector",
    "SinkStats",
    "extra_collectors",
    "make_registry",
    "race_families",
]
