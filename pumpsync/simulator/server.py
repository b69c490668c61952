"""What both providers' servers share: listening, admission, the connection registry,
connection-level faults and restarts. Runs entirely on the simulator's event loop."""

from __future__ import annotations

import abc
import asyncio
import http
import json
import logging
import time
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pumpsync._secrets import RedactingFilter
from pumpsync.simulator.connection import Conn, ConnectionInfo
from pumpsync.simulator.faults import MalformedKind, Reject
from pumpsync.simulator.market import MarketEvent, Trade
from pumpsync.simulator.plans import KeyTable, key_id

CLOSE_TIMEOUT = 1.0  # seconds to wait for the client's close frame before dropping TCP
STOP_CLOSE_TIMEOUT = 0.5  # shorter on shutdown: stop() must return promptly
STREAM_PATH = "/v1/stream"

log = logging.getLogger("pumpsync.simulator")


class _QuietHandshakes(logging.Filter):
    """REST answers and injected rejections end websockets' handshake with an HTTP
    response, which it logs as a failed handshake; these are intended, not errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "opening handshake failed"


ws_log = logging.getLogger("pumpsync.simulator.websockets")
# At DEBUG, websockets logs request lines and headers: keys in ?api_key= / ?key= / Authorization.
ws_log.addFilter(RedactingFilter())
ws_log.addFilter(_QuietHandshakes())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def json_response(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    phrase = http.HTTPStatus(status).phrase
    hdrs = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
            *headers,
        ]
    )
    return Response(status, phrase, hdrs, payload)


def request_key(request: Request, param: str) -> str | None:
    """The API key from ``Authorization: Bearer`` or the ``param`` query parameter."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    values = parse_qs(urlsplit(request.path).query).get(param)
    return values[0] if values else None


def _is_upgrade(request: Request) -> bool:
    return "websocket" in request.headers.get("Upgrade", "").lower()


class ProviderServer(abc.ABC):
    """One provider's WebSocket endpoint on its own port."""

    name: ClassVar[str]
    key_param: ClassVar[str]
    # Where the WebSocket upgrade is served; () serves it on any path (RPC nodes take a key as the path).
    stream_paths: ClassVar[tuple[str, ...]] = (STREAM_PATH,)

    def __init__(self, host: str, port: int, keys: KeyTable) -> None:
        self.host = host
        self.port = port
        self.keys = keys
        self.conns: dict[int, Conn] = {}
        self.rejects: deque[Reject] = deque()
        self.ignore_pings = False
        self._next_index = 0
        self._server: Server | None = None
        self._close_on_open: weakref.WeakKeyDictionary[ServerConnection, int] = weakref.WeakKeyDictionary()
        self._background: set[asyncio.Task[Any]] = set()

    # -- provider hooks --------------------------------------------------------------------

    @abc.abstractmethod
    async def admit(self, ws: ServerConnection, key: str | None) -> Conn | None:
        """Authorize and register, or close ``ws`` and return None."""

    @abc.abstractmethod
    async def on_message(self, conn: Conn, message: str | bytes) -> None: ...

    @abc.abstractmethod
    def malformed_frame(self, conn: Conn, kind: MalformedKind, size: int) -> str | bytes: ...

    @abc.abstractmethod
    def publish(self, events: list[MarketEvent]) -> None:
        """Record the feed's frames for ``events`` and send them to matching connections."""

    @abc.abstractmethod
    def blast_texts(self, conn: Conn, trade: Trade) -> list[str]:
        """The frames ``conn`` would get for ``trade`` (none if not subscribed)."""

    def http_request(self, request: Request) -> Response:
        """Plain HTTP GET on this port (no WebSocket upgrade)."""
        return json_response(404, {"error": {"code": "not_found", "message": "Not found"}})

    def on_closed(self, conn: Conn) -> None:  # noqa: B027 - optional hook
        pass

    def upgrade_response(self, ws: ServerConnection, request: Request) -> Response | None:
        """Refuse a WebSocket upgrade (on one of ``stream_paths``) with this response, or None to go on."""
        return None

    def connection_class(self) -> type[ServerConnection] | None:
        """websockets' per-connection class for this server (None: its default)."""
        return None

    # -- listening -------------------------------------------------------------------------

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            create_connection=self.connection_class(),
            compression=None,  # throughput; clients that offer deflate simply go without
            ping_interval=None,  # no protocol pings: stalls must be silent, heartbeats are app-level
            close_timeout=CLOSE_TIMEOUT,
            max_size=2**20,
            logger=ws_log,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close(close_connections=False)
        try:
            await asyncio.wait_for(server.wait_closed(), 2 * CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("%s server did not close in time", self.name)

    async def stop(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every connection with ``code`` (dropping stragglers), then stop listening."""
        conns = list(self.conns.values())
        for conn in conns:
            conn.unstall()
        await asyncio.gather(*(self._close_conn(c, code, reason, STOP_CLOSE_TIMEOUT) for c in conns))
        await self._stop_listening()
        for task in list(self._background):
            task.cancel()

    async def restart(self, downtime: float) -> None:
        for conn in list(self.conns.values()):
            conn.abort()
        await self._stop_listening()
        await asyncio.sleep(downtime)
        await self.start()

    # -- handshake and connection lifecycle ------------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if not _is_upgrade(request):
            return self.http_request(request)
        if self.stream_paths and urlsplit(request.path).path.rstrip("/") not in self.stream_paths:
            return ws.respond(404, "Not found\n")
        refusal = self.upgrade_response(ws, request)
        if refusal is not None:
            return refusal
        if self.rejects:
            reject = self.rejects.popleft()
            if reject.close_code is not None:
                self._close_on_open[ws] = reject.close_code
                return None
            response = ws.respond(reject.status, "Connection refused by the simulator\n")
            if reject.status == 429:
                response.headers["Retry-After"] = "1"
            return response
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        code = self._close_on_open.pop(ws, None)
        if code is not None:
            await ws.close(code, "rejected by the simulator")
            return
        assert ws.request is not None
        conn = await self.admit(ws, request_key(ws.request, self.key_param))
        if conn is None:
            return
        try:
            async for message in ws:
                if not conn.stalled:
                    await self.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            conn.cancel_tasks()
            self.conns.pop(conn.index, None)
            self.on_closed(conn)

    def register(self, ws: ServerConnection, key: str, plan_name: str) -> Conn:
        addr = ws.remote_address
        remote = (str(addr[0]), int(addr[1])) if addr else ("", 0)
        conn = Conn(ws, self.name, self._next_index, key_id(key), plan_name, remote)
        self._next_index += 1
        self.conns[conn.index] = conn
        return conn

    def key_connections(self, key: str) -> int:
        kid = key_id(key)
        return sum(1 for c in self.conns.values() if c.key_id == kid)

    async def _close_conn(self, conn: Conn, code: int, reason: str, timeout: float = CLOSE_TIMEOUT + 0.5) -> None:
        try:
            await asyncio.wait_for(conn.ws.close(code, reason), timeout)
        except (asyncio.TimeoutError, ConnectionClosed):
            conn.abort()

    # -- inspection and faults -------------------------------------------------------------

    def snapshots(self) -> list[ConnectionInfo]:
        return [c.snapshot() for c in self.conns.values()]

    def select(self, index: int | None) -> list[Conn]:
        if index is None:
            return list(self.conns.values())
        conn = self.conns.get(index)
        return [conn] if conn is not None else []

    def drop(self, index: int | None) -> int:
        conns = self.select(index)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def close(self, code: int, reason: str, index: int | None) -> int:
        conns = self.select(index)
        for conn in conns:
            conn.unstall()  # the close frame itself must go out
            task = asyncio.ensure_future(self._close_conn(conn, code, reason))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        await asyncio.sleep(0)  # let each close() write its frame before we return
        return len(conns)

    def stall(self, index: int | None, stalled: bool) -> int:
        conns = self.select(index)
        for conn in conns:
            conn.stall() if stalled else conn.unstall()
        return len(conns)

    def send_malformed(self, kind: MalformedKind, index: int | None, size: int) -> int:
        sent = 0
        for conn in self.select(index):
            sent += conn.send(self.malformed_frame(conn, kind, size))
        return sent
