"""A tiny Solana HTTP JSON-RPC node for the history tests: a real socket on 127.0.0.1.

It serves ``getSignaturesForAddress`` (newest first, ``limit``/``before``/``until``),
``getTransaction`` and ``getSlot`` from what a test puts in it, records every call, and can answer with HTTP
errors or JSON-RPC errors on demand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from pumpsync.events import Event

if TYPE_CHECKING:
    from pumpsync import Client


@dataclass
class Node:
    # Oldest first: (signature, slot, err, getTransaction result or None)
    history: list[tuple[str, int, Any, dict[str, Any] | None]] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # Answers for the next requests, whatever they ask: (HTTP status, headers, JSON-RPC error or None)
    faults: list[tuple[int, dict[str, str], dict[str, Any] | None]] = field(default_factory=list)
    first_request: threading.Event = field(default_factory=threading.Event)
    inflight: int = 0
    max_inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0
    # A hostile node: (method, params) -> (HTTP status, headers, raw body) to answer instead, or None
    # for the honest answer.
    hostile: Callable[[str, list[Any]], tuple[int, dict[str, str], bytes] | None] | None = None

    def add(self, signature: str, slot: int, tx: dict[str, Any] | None, err: Any = None) -> None:
        self.history.append((signature, slot, err, tx))

    def methods(self, name: str) -> list[Any]:
        with self.lock:
            return [params for method, params in self.calls if method == name]

    def answer(self, method: str, params: list[Any]) -> Any:
        if method == "getSignaturesForAddress":
            if params[0] != "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P":
                return []  # this node's history is the pump program's (PumpSwap's: none)
            options = params[1] if len(params) > 1 else {}
            newest_first = list(reversed(self.history))
            if options.get("before"):
                index = next(i for i, item in enumerate(newest_first) if item[0] == options["before"])
                newest_first = newest_first[index + 1 :]
            out = []
            for signature, slot, err, _ in newest_first:
                if signature == options.get("until"):
                    break
                out.append({"signature": signature, "slot": slot, "err": err, "blockTime": None, "memo": None})
                if len(out) == options.get("limit", 1000):
                    break
            return out
        if method == "getSlot":  # the newest slot it holds (what a node has seen by now)
            return max((slot for _, slot, _, _ in self.history), default=0)
        if method == "getTransaction":
            for signature, _, _, tx in self.history:
                if signature == params[0]:
                    return tx
            return None
        raise KeyError(method)


class _Handler(BaseHTTPRequestHandler):
    node: Node

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        node = self.node
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length))
        with node.lock:
            node.calls.append((request["method"], request["params"]))
            node.inflight += 1
            node.max_inflight = max(node.max_inflight, node.inflight)
            fault = node.faults.pop(0) if node.faults else None
        node.first_request.set()
        try:
            hostile = node.hostile(request["method"], request["params"]) if node.hostile else None
            if hostile is not None:
                self._send_raw(*hostile)
                return
            if fault is not None:
                status, headers, error = fault
                body: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
                if error is not None:
                    body["error"] = error
                self._send(status, headers, body)
                return
            result = node.answer(request["method"], request["params"])
            self._send(200, {}, {"jsonrpc": "2.0", "result": result, "id": request["id"]})
        finally:
            with node.lock:
                node.inflight -= 1

    def _send(self, status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
        self._send_raw(status, headers, json.dumps(body).encode())

    def _send_raw(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running_node() -> Iterator[Node]:
    node = Node()
    handler = type("Handler", (_Handler,), {"node": node})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    node.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="rpcstub", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def running_ws_node() -> Iterator[WsNode]:
    """A node's WebSocket side over its HTTP side (``running_node``), both on 127.0.0.1."""
    with running_node() as http:
        ws = WsNode(http).start()
        try:
            yield ws
        finally:
            ws.stop()


AMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"


class WsNode:
    """A Solana node's WebSocket side: ``logsSubscribe``/``logsUnsubscribe`` and notifications the
    test pushes. Every pushed transaction is also put in ``history`` (its HTTP side), as a node would."""

    def __init__(self, history: Node) -> None:
        self.history = history
        self.requests: list[dict[str, Any]] = []
        # How to answer the next logsSubscribe requests: "ok", "silent" or a JSON-RPC error object.
        self.subscribe_answers: list[Any] = []
        self.amm_requests: list[Any] = []
        self._connections: dict[Any, int] = {}  # connection -> its subscription id
        self._open: set[Any] = set()  # every client connection, subscribed or not
        self._lock = threading.Lock()
        self._next = 100
        self.subscribed = threading.Condition(self._lock)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def start(self) -> WsNode:
        from websockets.sync.server import serve

        self._server = serve(self._serve, "127.0.0.1", 0, max_size=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="wsnode", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.drop_all()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(5)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._connections)

    def _serve(self, connection: Any) -> None:
        with self._lock:
            self._open.add(connection)
        try:
            for message in connection:
                request = json.loads(message)
                if request["method"] == "logsSubscribe" and request["params"][0] == {"mentions": [AMM]}:
                    # PumpSwap's subscription: answered, never notified (this node serves the pump program)
                    with self._lock:
                        self.amm_requests.append(request)
                        self._next += 1
                        connection.send(json.dumps({"jsonrpc": "2.0", "result": self._next, "id": request["id"]}))
                    continue
                with self._lock:
                    self.requests.append(request)
                    answer = self.subscribe_answers.pop(0) if self.subscribe_answers else "ok"
                if request["method"] == "logsSubscribe":
                    if answer == "silent":
                        continue
                    if answer != "ok":
                        connection.send(json.dumps({"jsonrpc": "2.0", "error": answer, "id": request["id"]}))
                        continue
                    with self._lock:
                        self._next += 1
                        self._connections[connection] = self._next
                        reply = {"jsonrpc": "2.0", "result": self._next, "id": request["id"]}
                        connection.send(json.dumps(reply))  # under the lock: no notification overtakes it
                        self.subscribed.notify_all()
                elif request["method"] == "logsUnsubscribe":
                    with self._lock:
                        self._connections.pop(connection, None)
                    connection.send(json.dumps({"jsonrpc": "2.0", "result": True, "id": request["id"]}))
        except Exception:  # the client went away
            pass
        finally:
            with self._lock:
                self._connections.pop(connection, None)
                self._open.discard(connection)

    def push(self, signature: str, slot: int, logs: list[str], err: Any = None, live: bool = True) -> None:
        """A transaction: into the history, and (``live``) to every subscriber."""
        tx = {"slot": slot, "blockTime": None, "meta": {"err": err, "logMessages": logs}, "transaction": {}}
        self.history.add(signature, slot, tx, err)
        if not live:
            return
        with self._lock:
            for connection, sub_id in list(self._connections.items()):
                value = {"signature": signature, "err": err, "logs": logs}
                params = {"result": {"context": {"slot": slot}, "value": value}, "subscription": sub_id}
                try:
                    connection.send(json.dumps({"jsonrpc": "2.0", "method": "logsNotification", "params": params}))
                except Exception:
                    self._connections.pop(connection, None)

    def drop_all(self) -> None:
        """Close every client connection abruptly (no close frame): a network drop."""
        with self._lock:
            connections = list(self._open)
            self._connections.clear()
        for connection in connections:
            try:
                connection.socket.close()
            except OSError:
                pass


def take(client: Client, n: int) -> list[Event]:
    """The client's next ``n`` items, each an event (a test helper)."""
    out: list[Event] = []
    for _ in range(n):
        item = client.queue.get(timeout=30)  # a deadline, not a timing: a loaded machine is slow
        assert isinstance(item, Event), item
        out.append(item)
    return out
