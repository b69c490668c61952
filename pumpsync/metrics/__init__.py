"""Prometheus metrics for a running client, built at scrape time from the counters it keeps.

Nothing here touches the client's hot path: :class:`PumpsyncCollector` reads
``client.raw_stats`` (plain integers, ``Counter`` maps and fixed-bucket histograms), the queue
depth and, in daemon mode, the sinks' counters whenever Prometheus asks. It is registered on a
registry of its own, never on prometheus_client's global one.

:func:`start_metrics_server` serves ``/metrics``, ``/healthz`` and ``/readyz`` on one port::

    server = start_metrics_server(client, "127.0.0.1:9108")
    ...
    server.close()

Three private modules: ``_collector`` (the metric families), ``_health`` (what ``/readyz`` and
the healthy gauges report: the supervisor's verdict, read, never re-derived) and ``_http``.
"""

from __future__ import annotations

from pumpsync.metrics._collector import STATES, PumpsyncCollector, SinkStats, extra_collectors, make_registry
from pumpsync.metrics._health import client_ready, connection_healthy
from pumpsync.metrics._http import DEFAULT_ADDR, MetricsServer, parse_addr, start_metrics_server

__all__ = [
    "DEFAULT_ADDR",
    "STATES",
    "MetricsServer",
    "PumpsyncCollector",
    "SinkStats",
    "client_ready",
    "connection_healthy",
    "extra_collectors",
    "make_registry",
    "parse_addr",
    "start_metrics_server",
]
