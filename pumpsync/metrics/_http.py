"""The metrics endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on one port, a thread per request."""

from __future__ import annotations

import gzip
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from pumpsync.metrics._collector import SinkStats, make_registry
from pumpsync.metrics._health import client_ready

if TYPE_CHECKING:
    from pumpsync.client import Client

log = logging.getLogger("pumpsync.metrics")

DEFAULT_ADDR = "127.0.0.1:9108"
# The listen backlog. socketserver's default of 5 made the kernel drop the SYNs of a burst of
# scrapers (200 at once: 5-11 % waited out their 20 s timeout); the kernel caps this at somaxconn.
_BACKLOG = 1024


class Watch(Protocol):
    """The daemon's watch over its own threads (``pumpsync.daemon.watch.ThreadWatch``)."""

    def problem(self) -> str | None: ...
    def reporter(self, kind: str, name: str) -> Callable[[BaseException | None], None]: ...
    def collect(self) -> Iterable[Metric]: ...
    def describe(self) -> Iterable[Metric]: ...


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
    request_queue_size = _BACKLOG

    def __init__(
        self,
        addr: tuple[str, int],
        family: int,
        registry: CollectorRegistry,
        client: Client,
        sinks: Sequence[SinkStats] = (),
        watch: Watch | None = None,
    ) -> None:
        self.address_family = family
        self.registry = registry
        self.client = client
        self.watch = watch  # a dead thread of the daemon's makes it not ready
        self.sinks = list(sinks)  # a sink that cannot write (a stuck pipe) makes the daemon not ready
        super().__init__(addr, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr for anything a request raises. A scraper that
        # hangs up before its answer is written is routine (a timeout, a killed curl): one debug line.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("metrics client %s went away: %s", client_address, exc)
        else:
            log.exception("metrics request from %s failed", client_address)


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
            failing = [sink.name for sink in self.server.sinks if not sink.healthy]
            dead = self.server.watch.problem() if self.server.watch is not None else None
            ready = client_ready(self.server.client) and not failing and dead is None
            status = 200 if ready else 503
            body = b"ready\n" if ready else b"no healthy connection\n"
            if failing:
                body = f"sinks failing: {', '.join(failing)}\n".encode()
            if dead is not None:
                body = f"{dead}\n".encode()
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
        self._closing = False
        watch = server.watch
        self._on_death = watch.reporter("metrics", "metrics server") if watch is not None else None
        self._thread = threading.Thread(target=self._serve, name="pumpsync-metrics", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.5)
        except BaseException as exc:
            if self._on_death is None:
                raise
            self._on_death(exc)
        else:
            if self._on_death is not None and not self._closing:
                self._on_death(None)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_metrics_server(
    client: Client, addr: str = DEFAULT_ADDR, sinks: Sequence[SinkStats] | None = None, watch: Watch | None = None
) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``client`` on ``addr`` (port 0: a free port).

    ``watch`` (the daemon's): its metrics are served, a dead thread it knows of makes ``/readyz``
    answer 503, and the server's own thread reports its unexpected end to it."""
    host, port = parse_addr(addr)
    family = socket.AF_INET
    if host:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0]
        host = str(infos[0][4][0])
    registry = make_registry(client, sinks, [watch] if watch is not None else [])
    server = _Server((host, port), family, registry, client, sinks or (), watch)
    return MetricsServer(server)


__all__ = ["DEFAULT_ADDR", "MetricsServer", "parse_addr", "start_metrics_server"]
