"""The measured clients. Each consumes one :class:`Feed`, calls the recorder once per event it
holds, and can be aborted from another thread (the watchdog).

Every client ends up holding a parsed event: pumpsync an ``Event``, the baselines the dict
``json.loads`` made (for Solana logs, after decoding the trade: see :func:`solana_loads`). The
recorder reads the simulator's send stamp from it, the same lookup for everyone.
"""

from __future__ import annotations

import asyncio
import binascii
import importlib.util
import json
import queue
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import websocket

from pumpsync.client import Client, connect
from pumpsync.events import Event
from pumpsync_bench.probe import Recorder

STAMP = "simSentNs"
API_KEY = "bench"  # any key but the simulator's designated unfunded ones: PumpPortal trades stream for it
SOLANA_PROGRAM = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"


def keyed(url: str, param: str = "api_key") -> str:
    """The stream URL with the provider's key parameter (pumpsync adds it itself)."""
    return f"{url}{'&' if '?' in url else '?'}{param}={API_KEY}"


# What a baseline decodes of a Solana trade, as a hand-written script would: the TradeEvent's
# discriminator, then mint, sol_amount, token_amount, is_buy, user, timestamp (keys left as bytes).
_TRADE_TAG = bytes.fromhex("bddb7fd34ee661ee")
_TRADE_HEAD = struct.Struct("<8x32sQQ?32sq")
_DATA = "Program data: "


def solana_loads(message: str | bytes) -> dict[str, Any]:
    """A baseline's parse of a ``logsNotification``: ``json.loads``, then base64 and a struct
    unpack of each trade's leading fields. ``{STAMP: ...}`` for a frame that held a trade (the
    simulator's stamp, 0 if unstamped), ``{}`` for anything else (the subscription's answer)."""
    obj = json.loads(message)
    params = obj.get("params")
    if params is None:
        return {}
    value = params["result"]["value"]
    if value.get("err") is not None:
        return {}
    trades = 0
    for line in value["logs"]:
        if line.startswith(_DATA):
            data = binascii.a2b_base64(line[len(_DATA) :])
            if data[:8] == _TRADE_TAG:
                _TRADE_HEAD.unpack_from(data)
                trades += 1
    return {STAMP: obj.get(STAMP, 0)} if trades else {}


@dataclass(frozen=True)
class Feed:
    """What a client reads: one simulated provider's stream (or the fan-out's Redis stream)."""

    provider: str = "openpump"
    url: str = ""
    keys: tuple[str, ...] = ()  # pumpportal: the mints whose trades are subscribed to
    # The firehose's figures for the capacity client: frames before the blast, the blast's bytes.
    skip_frames: int = 0
    blast_bytes: int = 0

    @property
    def stamped(self) -> bool:
        """pumpsync's events carry the send stamp in ``raw``. Not Solana's: the simulator stamps the
        JSON-RPC message, whose envelope the decoded event does not keep (throughput and CPU only)."""
        return self.provider != "solana"

    @property
    def loads(self) -> Callable[[str | bytes], dict[str, Any]]:
        """The baselines' parse of one frame."""
        return solana_loads if self.provider == "solana" else json.loads

    def ws_url(self) -> str:
        """The URL a baseline connects to."""
        if self.provider == "openpump":
            return keyed(self.url)
        if self.provider == "pumpportal":
            return keyed(self.url, "api-key")
        return self.url

    def hello(self) -> list[str]:
        """What a baseline sends once connected (OpenPump streams everything unasked)."""
        if self.provider == "pumpportal":
            return [json.dumps({"method": "subscribeTokenTrade", "keys": list(self.keys)})]
        if self.provider == "solana":
            params = [{"mentions": [SOLANA_PROGRAM]}, {"commitment": "confirmed"}]
            return [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "logsSubscribe", "params": params})]
        return []

    def client_options(self) -> dict[str, Any]:
        """``Client``/``connect`` arguments for pumpsync (the provider's name included)."""
        options: dict[str, Any] = {"provider": self.provider, "url": self.url}
        if self.provider in ("openpump", "pumpportal"):
            options["api_key"] = API_KEY
        if self.provider == "pumpportal":
            options["channels"] = {"token_trades": {"keys": list(self.keys)}}
        return options  # solana, redis: no key


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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class PumpsyncQueue(BenchClient):
    """The product: ``Client`` + ``queue.get()``, its metrics served (the orchestrator scrapes them)."""

    key = "pumpsync"
    label = "pumpsync Client+get, metrics"
    metrics = True

    _client: Client | None = None

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        from pumpsync.metrics import start_metrics_server

        client = self._client = Client(**feed.client_options())
        client.start()
        server = start_metrics_server(client, self.metrics_addr or "127.0.0.1:0")
        get = client.queue.get
        unstamped = None if feed.stamped else 0  # Solana: every event counts, no latency
        try:
            while True:
                item = get()
                if type(item) is not Event:  # ClientClosed after abort(), or a fatal error
                    break
                stamp = item.raw.get(STAMP, unstamped)
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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        with connect(**feed.client_options()) as stream:
            self._client = stream
            extra = self.consume(stream, record, None if feed.stamped else 0)
        stats = stream.stats()
        return {"dropped": stats["dropped"], "duplicates": stats["duplicates"], **extra}

    def consume(self, stream: Client, record: Recorder, unstamped: int | None) -> dict[str, Any]:
        for event in stream:
            stamp = event.raw.get(STAMP, unstamped)
            if stamp is not None and record(stamp):
                break
        return {}

    def abort(self) -> None:
        if self._client is not None:
            self._client.close()


class PumpsyncMarket(PumpsyncIterator):
    """The iterator with :class:`pumpsync.Market` applying every event (issue #27, item 5): this
    client's CPU per event minus the iterator's, same run, is what the market view costs."""

    key = "pumpsync-market"
    label = "pumpsync iterator + Market.update"

    def consume(self, stream: Client, record: Recorder, unstamped: int | None) -> dict[str, Any]:
        from pumpsync.market import Market

        market = Market()
        update = market.update
        for event in stream:
            update(event)
            stamp = event.raw.get(STAMP, unstamped)
            if stamp is not None and record(stamp):
                break
        counts = market.stats()
        return {"market_applied": counts["applied"], "market_bad": counts["bad"]}


class WsRecv(BenchClient):
    """websocket-client with default options: ``recv()`` + ``json.loads`` on one thread."""

    key = "ws-recv"
    label = "websocket-client recv()"

    _ws: Any = None

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        ws = self._ws = websocket.create_connection(feed.ws_url())
        loads = feed.loads
        try:
            for text in feed.hello():
                ws.send(text)
            while True:
                obj = loads(ws.recv())
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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        q, loads, hello = self._queue, feed.loads, feed.hello()

        def on_open(ws: Any) -> None:
            for text in hello:
                ws.send(text)

        app = self._app = websocket.WebSocketApp(
            feed.ws_url(),
            on_open=on_open,
            on_message=lambda _ws, message: q.put(loads(message)),
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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        from pumpsync._framing import OP_TEXT, FrameDecoder

        ws = self._ws = websocket.create_connection(feed.ws_url())
        for text in feed.hello():
            ws.send(text)
        loads = feed.loads
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
                stamp = loads(payload).get(STAMP)
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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        asyncio.run(self._main(feed, record))
        return {}

    async def _main(self, feed: Feed, record: Recorder) -> None:
        from websockets.asyncio.client import connect as ws_connect
        from websockets.exceptions import ConnectionClosed

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        loads = feed.loads
        try:
            async with ws_connect(feed.ws_url()) as ws:
                for text in feed.hello():
                    await ws.send(text)
                async for message in ws:
                    obj = loads(message)
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

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        asyncio.run(self._main(feed, record))
        return {}

    async def _main(self, feed: Feed, record: Recorder) -> None:
        from picows import WSListener, WSMsgType, ws_connect

        loads = feed.loads

        def on_ws_frame(listener: Any, transport: Any, frame: Any) -> None:
            if frame.msg_type is WSMsgType.TEXT:
                stamp = loads(frame.get_payload_as_bytes()).get(STAMP)
                if stamp is not None and record(stamp):
                    transport.disconnect()
            elif frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()

        # Built with type(), not a class statement: without the bench extra WSListener is Any to
        # mypy, and strict mypy refuses a class statement subclassing Any; the same code then
        # type-checks with and without picows installed.
        Listener = type("Listener", (WSListener,), {"on_ws_frame": on_ws_frame})

        self._loop = asyncio.get_running_loop()
        try:
            transport, _ = await ws_connect(Listener, feed.ws_url(), max_frame_size=1 << 20)
        except OSError:
            return
        self._transport = transport
        for text in feed.hello():
            transport.send(WSMsgType.TEXT, text.encode())
        await transport.wait_disconnected()

    def abort(self) -> None:
        loop, transport = self._loop, self._transport
        if loop is not None and transport is not None and not loop.is_closed():
            loop.call_soon_threadsafe(transport.disconnect)


class NullClient(BenchClient):
    """The capacity run: websocket-client's handshake and hello, the frames before the blast read,
    then 1 MiB ``recv_into`` calls that discard the blast's bytes. No frame is parsed: what the
    server and the loopback can deliver, the figure every real client must stay well below."""

    key = "null"
    label = "capacity: null client (discard)"

    _ws: Any = None

    def run(self, feed: Feed, record: Recorder) -> dict[str, Any]:
        ws = self._ws = websocket.create_connection(feed.ws_url())
        total = 0
        try:
            for text in feed.hello():
                ws.send(text)
            for _ in range(feed.skip_frames):
                ws.recv()
            sock = ws.sock
            assert sock is not None  # connected
            buf = bytearray(1 << 20)
            recv_into, want, count, counted = sock.recv_into, feed.blast_bytes, record.count, 0
            while total < want:
                n = recv_into(buf)
                if not n:
                    break
                total += n
                seen = max(1, total * count // want)  # frames, by their share of the bytes
                if seen > counted and record.many(seen - counted):
                    break
                counted = max(counted, seen)
        except (OSError, websocket.WebSocketException):
            pass  # aborted
        finally:
            ws.close()
        return {"bytes": total}

    def abort(self) -> None:
        _shutdown(self._ws)


CLIENTS: dict[str, type[BenchClient]] = {
    cls.key: cls
    for cls in (
        PumpsyncQueue,
        PumpsyncIterator,
        PumpsyncMarket,
        WsRecv,
        WsApp,
        Websockets,
        Picows,
        HandOffFloor,
        NullClient,
    )
}
PRODUCT = PumpsyncQueue.key
ITERATOR = PumpsyncIterator.key
MARKET = PumpsyncMarket.key  # the bulk workload only: the market view's cost over the iterator
NULL = NullClient.key  # the capacity run's client: on firehose workloads only, never a baseline
