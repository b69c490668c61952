"""The measured clients. Each consumes one stream, calls the recorder once per event it holds,
and can be aborted from another thread (the watchdog).

Every client ends up holding a parsed event: pumpsync an ``Event``, the baselines the dict
``json.loads`` made. The recorder reads the simulator's send stamp from it, the same lookup
for everyone.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import queue
import socket
import threading
from typing import Any, ClassVar

import websocket

from pumpsync.bench.probe import Recorder
from pumpsync.client import Client, connect
from pumpsync.events import Event

STAMP = "simSentNs"
API_KEY = "bench"


def keyed(url: str) -> str:
    """The stream URL with OpenPump's key parameter (pumpsync adds it itself)."""
    return f"{url}{'&' if '?' in url else '?'}api_key={API_KEY}"


def _shutdown(ws: Any) -> None:
    """Wake a thread blocked reading ``ws`` (a websocket-client connection, or None)."""
    sock = ws.sock if ws is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class BenchClient:
    """One way to consume the stream; ``run`` returns extra facts for the result."""

    key: ClassVar[str]
    label: ClassVar[str]
    metrics: ClassVar[bool] = False  # serves /metrics on ``metrics_addr``, for the orchestrator to scrape
    requires: ClassVar[str | None] = None  # a module only this baseline needs (an optional install)

    @classmethod
    def available(cls) -> bool:
        return cls.requires is None or importlib.util.find_spec(cls.requires) is not None

    def __init__(self, metrics_addr: str | None = None) -> None:
        self.metrics_addr = metrics_addr

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class PumpsyncQueue(BenchClient):
    """The product: ``Client`` + ``queue.get()``, its metrics served (the orchestrator scrapes them)."""

    key = "pumpsync"
    label = "pumpsync Client+get, metrics"
    metrics = True

    _client: Client | None = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        from pumpsync.metrics import start_metrics_server

        client = self._client = Client("openpump", api_key=API_KEY, url=url)
        client.start()
        server = start_metrics_server(client, self.metrics_addr or "127.0.0.1:0")
        get = client.queue.get
        try:
            while True:
                item = get()
                if type(item) is not Event:  # ClientClosed after abort(), or a fatal error
                    break
                stamp = item.raw.get(STAMP)
                if stamp is not None and record(stamp):
                    break
        finally:
            server.close()
            client.close()
        stats = client.stats()
        return {"dropped": stats["dropped"], "duplicates": stats["duplicates"]}

    def abort(self) -> None:
        if self._client is not None:
            self._client.close()


class PumpsyncIterator(BenchClient):
    """``for event in pumpsync.connect(...)``, no metrics server."""

    key = "pumpsync-iter"
    label = "pumpsync connect() iterator"

    _client: Client | None = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        with connect("openpump", api_key=API_KEY, url=url) as stream:
            self._client = stream
            for event in stream:
                stamp = event.raw.get(STAMP)
                if stamp is not None and record(stamp):
                    break
        stats = stream.stats()
        return {"dropped": stats["dropped"], "duplicates": stats["duplicates"]}

    def abort(self) -> None:
        if self._client is not None:
            self._client.close()


class WsRecv(BenchClient):
    """websocket-client with default options: ``recv()`` + ``json.loads`` on one thread."""

    key = "ws-recv"
    label = "websocket-client recv()"

    _ws: Any = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        ws = self._ws = websocket.create_connection(keyed(url))
        try:
            while True:
                obj = json.loads(ws.recv())
                stamp = obj.get(STAMP)
                if stamp is not None and record(stamp):
                    break
        except (OSError, websocket.WebSocketException):
            pass  # aborted
        finally:
            ws.close()
        return {}

    def abort(self) -> None:
        _shutdown(self._ws)


_END = object()


class WsApp(BenchClient):
    """The naive threaded design: ``WebSocketApp`` parses in ``on_message`` into a ``queue.Queue``."""

    key = "ws-app"
    label = "WebSocketApp+json+Queue"

    def __init__(self, metrics_addr: str | None = None) -> None:
        super().__init__(metrics_addr)
        self._app: Any = None
        self._queue: queue.Queue[Any] = queue.Queue()

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        q = self._queue
        app = self._app = websocket.WebSocketApp(
            keyed(url),
            on_message=lambda _ws, message: q.put(json.loads(message)),
            on_close=lambda *_: q.put(_END),
            on_error=lambda *_: q.put(_END),
        )
        thread = threading.Thread(target=app.run_forever, name="bench-wsapp", daemon=True)
        thread.start()
        try:
            while True:
                obj = q.get()
                if obj is _END:
                    break
                stamp = obj.get(STAMP)
                if stamp is not None and record(stamp):
                    break
        finally:
            app.close(timeout=1.0)  # it waits for the server's close frame (3 s by default)
            thread.join(1.0)  # its dispatcher may stay blocked after close(); a daemon, it ends with us
        return {}

    def abort(self) -> None:
        if self._app is not None:
            self._app.close(timeout=1.0)
        self._queue.put(_END)


class HandOffFloor(BenchClient):
    """A two-thread design that does nothing else: what the threads, the socket and a
    ``SimpleQueue`` hand-off cost before any of the work pumpsync does per event.

    websocket-client's handshake, then a thread that makes 64 KiB ``recv()`` calls on the bare
    socket, splits frames and puts each payload on a ``queue.SimpleQueue``; the consumer
    ``json.loads`` it. No de-duplication, no events, no stats, no supervision, no metrics.
    """

    key = "floor"
    label = "floor: recv+SimpleQueue"

    _ws: Any = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        from pumpsync._framing import OP_TEXT, FrameDecoder

        ws = self._ws = websocket.create_connection(keyed(url))
        sock = ws.sock
        assert sock is not None  # connected
        payloads: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def read() -> None:
            decoder, put, recv = FrameDecoder(1 << 20), payloads.put, sock.recv
            try:
                while chunk := recv(65536):
                    for opcode, payload in decoder.feed(chunk):
                        if opcode == OP_TEXT:
                            put(payload)
            except OSError:
                pass  # aborted
            finally:
                put(None)

        reader = threading.Thread(target=read, name="bench-floor-reader", daemon=True)
        reader.start()
        try:
            while (payload := payloads.get()) is not None:
                stamp = json.loads(payload).get(STAMP)
                if stamp is not None and record(stamp):
                    break
        finally:
            self.abort()
            reader.join(5.0)
            ws.close()
        return {}

    def abort(self) -> None:
        _shutdown(self._ws)


class Websockets(BenchClient):
    """The asyncio library: ``async for message in websockets.asyncio.client.connect(...)`` + ``json.loads``."""

    key = "websockets"
    label = "websockets asyncio"

    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        asyncio.run(self._main(url, record))
        return {}

    async def _main(self, url: str, record: Recorder) -> None:
        from websockets.asyncio.client import connect as ws_connect
        from websockets.exceptions import ConnectionClosed

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            async with ws_connect(keyed(url)) as ws:
                async for message in ws:
                    obj = json.loads(message)
                    stamp = obj.get(STAMP)
                    if stamp is not None and record(stamp):
                        break
        except (asyncio.CancelledError, ConnectionClosed, OSError):
            pass  # aborted

    def abort(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


class Picows(BenchClient):
    """The fastest Python WebSocket client (Cython, asyncio): ``picows`` with a bare
    ``json.loads`` per text frame in ``on_ws_frame``. The ceiling a Python client can reach."""

    key = "picows"
    label = "picows + json.loads"
    requires = "picows"  # pip install 'pumpsync[bench]'

    _loop: asyncio.AbstractEventLoop | None = None
    _transport: Any = None

    def run(self, url: str, record: Recorder) -> dict[str, Any]:
        asyncio.run(self._main(url, record))
        return {}

    async def _main(self, url: str, record: Recorder) -> None:
        from picows import WSListener, WSMsgType, ws_connect

        loads = json.loads

        class Listener(WSListener):
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type is WSMsgType.TEXT:
                    stamp = loads(frame.get_payload_as_bytes()).get(STAMP)
                    if stamp is not None and record(stamp):
                        transport.disconnect()
                elif frame.msg_type is WSMsgType.CLOSE:
                    transport.disconnect()

        self._loop = asyncio.get_running_loop()
        try:
            transport, _ = await ws_connect(Listener, keyed(url), max_frame_size=1 << 20)
        except OSError:
            return
        self._transport = transport
        await transport.wait_disconnected()

    def abort(self) -> None:
        loop, transport = self._loop, self._transport
        if loop is not None and transport is not None and not loop.is_closed():
            loop.call_soon_threadsafe(transport.disconnect)


CLIENTS: dict[str, type[BenchClient]] = {
    cls.key: cls for cls in (PumpsyncQueue, PumpsyncIterator, WsRecv, WsApp, Websockets, Picows, HandOffFloor)
}
PRODUCT = PumpsyncQueue.key
