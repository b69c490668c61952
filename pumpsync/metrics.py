"""Prometheus metrics for a running client, built at scrape time from the counters it keeps.

Nothing here touches the client's hot path: :class:`PumpsyncCollector` reads
``client.raw_stats`` (plain integers, ``Counter`` maps and fixed-bucket histograms), the queue
depth and, in daemon mode, the sinks' counters whenever Prometheus asks. It is registered on a
registry of its own, never on prometheus_client's global one.

:func:`start_metrics_server` serves ``/metrics``, ``/healthz`` and ``/readyz`` on one port::

    server = start_metrics_server(client, "127.0.0.1:9108")
    ...
    server.close()
"""

from __future__ import annotations

import gzip
import logging
import platform
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

from pumpsync._stats import ConnectionStats, Histogram
from pumpsync._version import __version__
from pumpsync.events import KINDS
from pumpsync.providers.base import MALFORMED_REASONS

if TYPE_CHECKING:
    from pumpsync.client import Client

log = logging.getLogger("pumpsync.metrics")

DEFAULT_ADDR = "127.0.0.1:9108"
STATES = ("idle", "connecting", "open", "backoff", "failed", "closed")
# Provider-chosen strings (notice codes, channel names) become labels only up to this many
# distinct values; the rest are summed under "other" so a misbehaving server cannot blow up
# the series count.
_MAX_FREE_LABELS = 32

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


def connection_healthy(conn: ConnectionStats, stale_timeout: float, now: float | None = None) -> bool:
    """Open, and something arrived within ``stale_timeout`` (counted from the opening, as the supervisor does)."""
    if conn.state != "open":
        return False
    now = time.time() if now is None else now
    last = max(conn.last_frame_at or 0.0, conn.state_since)
    return now - last < stale_timeout


def client_ready(client: Client) -> bool:
    """At least one connection is healthy (``/readyz``, sd_notify READY=1)."""
    now = time.time()
    stale = client.config.stale_timeout
    return any(connection_healthy(c, stale, now) for c in client.raw_stats.connections)


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


def _buckets(hist: Histogram) -> tuple[list[tuple[str, float]], float]:
    # The +Inf bucket doubles as _count, so count and buckets always agree even mid-update.
    return [(le, float(n)) for le, n in hist.cumulative()], hist.sum


class PumpsyncCollector:
    """A prometheus_client custom collector over one client (and optionally the daemon's sinks)."""

    def __init__(self, client: Client, sinks: Sequence[SinkStats] | None = None) -> None:
        self.client = client
        self.sinks = list(sinks or ())

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed and unique; skip registration-time collection

    def collect(self) -> Iterator[Metric]:
        families = chain(self._build_info(), self._client_metrics(), self._connection_metrics(), self._sink_metrics())
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

        events = CounterMetricFamily(
            "pumpsync_events", "Events delivered (first copies), by kind.", labels=["provider", "kind"]
        )
        counts = _copy(stats.events)
        for kind in sorted(set(KINDS) | set(counts)):
            events.add_metric([*p, kind], counts.get(kind, 0))
        yield events

        delay = HistogramMetricFamily(
            "pumpsync_event_delay_seconds", "Provider timestamp to local receipt, live events.", labels=["provider"]
        )
        buckets, total = _buckets(stats.delay)
        delay.add_metric(p, buckets, total)
        yield delay

        rejected = CounterMetricFamily(
            "pumpsync_subscription_rejections", "Channels the provider refused.", labels=["provider", "channel"]
        )
        for channel, n in _bounded(stats.rejected).items():
            rejected.add_metric([*p, channel], n)
        yield rejected

        notices = CounterMetricFamily(
            "pumpsync_provider_notices", "Non-fatal error reports from the provider, by code.",
            labels=["provider", "reason"],
        )  # fmt: skip
        for code, n in _bounded(stats.notices).items():
            notices.add_metric([*p, code], n)
        yield notices

    def _connection_metrics(self) -> Iterator[Metric]:
        stats = self.client.raw_stats
        stale = self.client.config.stale_timeout
        now = time.time()
        conn_labels = ["provider", "connection"]

        def gauge(name: str, doc: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*conn_labels, *extra])

        def counter(name: str, doc: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[*conn_labels, *extra])

        up = gauge("pumpsync_connection_up", "1 while the connection's socket is open.")
        healthy = gauge("pumpsync_connection_healthy", "1 while open and something arrived within the stale timeout.")
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
        for conn in stats.connections:
            key = [stats.provider, str(conn.index)]
            current = conn.state
            up.add_metric(key, 1.0 if current == "open" else 0.0)
            healthy.add_metric(key, 1.0 if connection_healthy(conn, stale, now) else 0.0)
            for name in STATES:
                state.add_metric([*key, name], 1.0 if current == name else 0.0)
            since.add_metric(key, conn.state_since)
            attempts.add_metric(key, conn.attempts)
            connects.add_metric(key, conn.connects)
            for (reason, code), n in sorted(_copy(conn.disconnects).items()):
                disconnects.add_metric([*key, reason, code], n)
            frames.add_metric(key, conn.frames)
            received.add_metric(key, conn.bytes)
            counts = _copy(conn.malformed)
            for reason in sorted(set(MALFORMED_REASONS) | set(counts)):
                malformed.add_metric([*key, reason], counts.get(reason, 0))
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


def make_registry(client: Client, sinks: Sequence[SinkStats] | None = None) -> CollectorRegistry:
    """A dedicated registry: the pumpsync collector plus process metrics (``pumpsync_process_*``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PumpsyncCollector(client, sinks))
    ProcessCollector(namespace="pumpsync", registry=registry)
    return registry


# ---------------------------------------------------------------------------- HTTP


def parse_addr(addr: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every interface)."""
    host, sep, port_text = addr.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"{addr!r} is not host:port")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host, int(port_text)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], family: int, registry: CollectorRegistry, client: Client) -> None:
        self.address_family = family
        self.registry = registry
        self.client = client
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a stuck scraper must not hold a thread forever
    server_version = "pumpsync"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        headers: dict[str, str] = {}
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(self.server.registry)
            except Exception:  # a collector bug must answer 500, not kill the thread with a traceback
                log.exception("collecting metrics failed")
                status, body, content_type = 500, b"collecting metrics failed\n", "text/plain; charset=utf-8"
            else:
                status = 200
                if "gzip" in self.headers.get("Accept-Encoding", ""):
                    body = gzip.compress(body, compresslevel=1)
                    headers["Content-Encoding"] = "gzip"
        elif path == "/healthz":
            status, body, content_type = 200, b"ok\n", "text/plain; charset=utf-8"
        elif path == "/readyz":
            ready = client_ready(self.server.client)
            status = 200 if ready else 503
            body = b"ready\n" if ready else b"no healthy connection\n"
            content_type = "text/plain; charset=utf-8"
        elif path == "/":
            status, content_type = 200, "text/plain; charset=utf-8"
            body = b"pumpsync: /metrics /healthz /readyz\n"
        else:
            status, body, content_type = 404, b"not found\n", "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class MetricsServer:
    """A running metrics endpoint; ``port`` is the bound port (useful with port 0)."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self.registry = server.registry
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.5}, name="pumpsync-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_metrics_server(
    client: Client, addr: str = DEFAULT_ADDR, sinks: Sequence[SinkStats] | None = None
) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``client`` on ``addr`` (port 0: a free port)."""
    host, port = parse_addr(addr)
    family = socket.AF_INET
    if host:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        host = str(infos[0][4][0])
    server = _Server((host, port), family, make_registry(client, sinks), client)
    return MetricsServer(server)


__all__ = [
    "DEFAULT_ADDR",
    "MetricsServer",
    "PumpsyncCollector",
    "SinkStats",
    "client_ready",
    "connection_healthy",
    "make_registry",
    "parse_addr",
    "start_metrics_server",
]
