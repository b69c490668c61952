"""A simulated Yellowstone gRPC (Geyser) server, fed by the same market as every simulated provider.

The Solana node's simulator underneath (``SolanaServer``: the same transactions, its history over
HTTP JSON-RPC on its port, which is this provider's ``rest_url``), plus a grpcio server on a port of
its own serving ``/geyser.Geyser/Subscribe`` with raw bytes (a generic handler, its own protobuf
writer: ``geyser_wire``). It pings every ``ping_interval``, answers pings with pongs, keeps the last
``replay_slots`` slots for ``from_slot`` (older: OUT_OF_RANGE naming the first slot it has, as the
real server does), and injects faults: a stream reset, UNAVAILABLE, RESOURCE_EXHAUSTED, a silent
stream, an oversized message, a dead slot, and an idle cut (a load balancer that drops a stream
whose client sent nothing for ``idle_timeout``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pumpsync.providers.geyser._grpc import import_grpc
from pumpsync.simulator._solana_tx import render
from pumpsync.simulator.connection import ConnectionInfo, SubscriptionInfo
from pumpsync.simulator.geyser_wire import (
    ping_update,
    pong_update,
    read_request,
    slot_update,
    transaction_update,
)
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.solana import SolanaServer

METHOD = "/geyser.Geyser/Subscribe"
_DEAD, _PROCESSED, _CONFIRMED = 6, 0, 1
_TICK = 0.05


@dataclass
class _Stream:
    """One client's Subscribe call."""

    index: int
    out: queue.Queue[bytes | tuple[Any, str]] = field(default_factory=queue.Queue)
    programs: tuple[str, ...] = ()
    commitment: int = 1
    live: bool = False  # filters set: live updates go to it
    silent: bool = False  # a silent stream: nothing at all goes out (not even pings)
    last_rx: float = field(default_factory=time.monotonic)
    requests: int = 0
    pongs: int = 0


class GeyserServer(SolanaServer):
    name = "geyser"

    def __init__(
        self,
        host: str,
        port: int,
        keys: KeyTable,
        current_slot: Callable[[], int],
        history_limit: int | None = None,
        ping_interval: float = 10.0,
        replay_slots: int = 150,
    ) -> None:
        super().__init__(host, port, keys, current_slot, history_limit)
        self.grpc_port = 0
        self.ping_interval = ping_interval
        self.replay_slots = replay_slots
        self.idle_timeout: float | None = None
        self.max_streams = 64
        self._grpc: Any = None
        self._lock = threading.Lock()  # streams, replay buffer, faults: the loop thread and grpc threads
        self._streams: dict[int, _Stream] = {}
        self._next = 0
        self._replay: deque[tuple[int, bytes]] = deque()  # (slot, update) of the last replay_slots slots
        self._slot = 0  # the newest slot a transaction went out in
        self._dead_next = 0
        self._dead: set[int] = set()
        self.grpc_rejects: deque[tuple[str, str]] = deque()  # (status name, details) for the next calls
        self.calls = 0

    # -- listening
    def stream_url(self) -> str:
        return f"http://{self.host}:{self.grpc_port}"

    async def start(self) -> None:
        await super().start()
        self._start_grpc()

    def _start_grpc(self) -> None:
        grpc = import_grpc()  # its tracers must not print the clients' tokens either

        server = grpc.server(ThreadPoolExecutor(max_workers=self.max_streams, thread_name_prefix="sim-geyser"))
        handler = grpc.method_handlers_generic_handler(
            "geyser.Geyser", {"Subscribe": grpc.stream_stream_rpc_method_handler(self._grpc_subscribe)}
        )
        server.add_generic_rpc_handlers((handler,))
        self.grpc_port = server.add_insecure_port(f"{self.host}:{self.grpc_port}")
        server.start()
        self._grpc = server

    def _stop_grpc(self) -> None:
        server, self._grpc = self._grpc, None
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.out.put(("UNAVAILABLE", "the server is going away"))
        if server is not None:
            server.stop(grace=0.2).wait(2.0)

    async def stop(self, code: int = 1001, reason: str = "going away") -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._stop_grpc)
        await super().stop(code, reason)

    async def restart(self, downtime: float) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._stop_grpc)
        await asyncio.sleep(downtime)
        self._start_grpc()

    # -- the market
    def _stream(self, recipe: Any) -> None:  # a Recipe (its module moves in the chain branch)
        super()._stream(recipe)  # the node's history (getTransaction) and its WebSocket subscribers
        if recipe.kind in ("unknown_event", "undecodable"):
            return
        rendered = render(recipe)
        keys = rendered.keys
        # The last accounts (up to 4, none an invoked program) travel as lookup-table addresses, as a
        # v0 transaction's would: the client must append them before it resolves any index.
        invoked = {ins["programIdIndex"] for ins in rendered.instructions}
        invoked |= {ins["programIdIndex"] for group in rendered.inner for ins in group["instructions"]}
        movable = 0
        while movable < 4 and len(keys) - 1 - movable > 0 and len(keys) - 1 - movable not in invoked:
            movable += 1
        update = transaction_update(
            recipe.signature,
            recipe.slot,
            keys,
            rendered.instructions,
            rendered.inner,
            rendered.logs,
            recipe.failed,
            loaded=movable,
        )
        self._send_update(recipe.slot, update, recipe.programs)

    def _send_update(self, slot: int, update: bytes, programs: tuple[str, ...]) -> None:
        with self._lock:
            if slot > self._slot:
                self._close_slots(slot)
            self._replay.append((slot, update))
            while self._replay and self._replay[0][0] < slot - self.replay_slots:
                self._replay.popleft()
            for stream in self._streams.values():
                if stream.live and any(p in stream.programs for p in programs):
                    stream.out.put(update)

    def _close_slots(self, slot: int) -> None:
        """A new slot began: the previous one is done (processed, then confirmed), or DEAD (under the lock)."""
        previous, self._slot = self._slot, slot
        if self._dead_next and previous:
            self._dead_next -= 1
            self._dead.add(previous)
        if not previous:
            return
        dead = previous in self._dead
        for status in (_DEAD,) if dead else (_PROCESSED, _CONFIRMED):
            update = slot_update(previous, status)
            self._replay.append((previous, update))
            for stream in self._streams.values():
                if stream.live and (status == _DEAD or status == stream.commitment or stream.commitment == 0):
                    stream.out.put(update)

    # -- the Subscribe call (grpc threads)
    def _grpc_subscribe(self, requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        import grpc

        with self._lock:
            self.calls += 1
            reject = self.grpc_rejects.popleft() if self.grpc_rejects else None
        if reject is not None:
            context.abort(getattr(grpc.StatusCode, reject[0]), reject[1])
        token = dict(context.invocation_metadata()).get("x-token")
        if self.keys.solana(token) is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"invalid x-token {token}")  # echoed: a hostile server
        with self._lock:
            stream = _Stream(self._next)
            self._next += 1
            self._streams[stream.index] = stream
        reader = threading.Thread(target=self._read_requests, args=(stream, requests), daemon=True)
        reader.start()
        try:
            yield from self._responses(stream, context)
        finally:
            with self._lock:
                self._streams.pop(stream.index, None)

    def _responses(self, stream: _Stream, context: Any) -> Iterator[bytes]:
        import grpc

        next_ping = time.monotonic() + self.ping_interval
        while context.is_active():
            now = time.monotonic()
            if self.idle_timeout is not None and now - stream.last_rx > self.idle_timeout:
                context.abort(grpc.StatusCode.UNAVAILABLE, "idle stream cut by the load balancer")
            if now >= next_ping:
                next_ping = now + self.ping_interval
                if not stream.silent:
                    yield ping_update()
            try:
                item = stream.out.get(timeout=_TICK)
            except queue.Empty:
                continue
            if isinstance(item, tuple):
                code, details = item
                context.abort(getattr(grpc.StatusCode, code), details)
            if not stream.silent and isinstance(item, bytes):
                yield item

    def _read_requests(self, stream: _Stream, requests: Iterator[bytes]) -> None:
        try:
            for data in requests:
                stream.last_rx = time.monotonic()
                stream.requests += 1
                request = read_request(data)
                if request.filters:
                    self._set_filters(stream, request.programs, request.commitment, request.from_slot)
                if request.ping is not None and not request.filters:
                    stream.pongs += 1
                    stream.out.put(pong_update(request.ping))
        except Exception:
            return

    def _set_filters(self, stream: _Stream, programs: list[str], commitment: int, from_slot: int | None) -> None:
        with self._lock:
            stream.programs, stream.commitment = tuple(programs), commitment
            if from_slot is not None:
                first = self._replay[0][0] if self._replay else self._slot
                if from_slot < first:
                    message = f"broadcast from {from_slot} is not available, last available: {first}"
                    stream.out.put(("OUT_OF_RANGE", message))
                    return
                for slot, update in self._replay:
                    if slot >= from_slot:
                        stream.out.put(update)
            stream.live = True

    # -- inspection and faults (any thread); the Simulator's generic ones act on the gRPC streams
    def streams(self) -> list[_Stream]:
        with self._lock:
            return list(self._streams.values())

    def snapshots(self) -> list[ConnectionInfo]:
        return [
            ConnectionInfo(
                self.name,
                stream.index,
                None,
                [SubscriptionInfo(None, "transactions", {"account_include": list(stream.programs)})]
                if stream.live
                else [],
                0,
                stream.pongs,
                stream.requests,
                "pro",
                ("127.0.0.1", 0),
                stream.silent,
                stream.live,
            )
            for stream in self.streams()
        ]

    def drop(self, index: int | None) -> int:
        return self.fault("reset", index)

    async def close(self, code: int, reason: str, index: int | None) -> int:
        return self.fault("unavailable", index)

    def stall(self, index: int | None, stalled: bool) -> int:
        streams = [s for s in self.streams() if index is None or s.index == index]
        for stream in streams:
            stream.silent = stalled
        return len(streams)

    def fault(self, kind: str, index: int | None = None, size: int = 0) -> int:
        """``reset`` (the stream ends as an RST_STREAM does), ``unavailable``, ``exhausted``
        (RESOURCE_EXHAUSTED), ``silent`` (nothing more goes out), ``oversized`` (a message of ``size``
        bytes); ``dead_slot`` marks the next slot DEAD."""
        if kind == "dead_slot":
            with self._lock:
                self._dead_next += 1
            return 1
        statuses = {
            "reset": ("INTERNAL", "Received RST_STREAM with error code 2"),
            "unavailable": ("UNAVAILABLE", "the server is restarting"),
            "exhausted": ("RESOURCE_EXHAUSTED", "too many requests"),
        }
        streams = [s for s in self.streams() if index is None or s.index == index]
        for stream in streams:
            if kind in statuses:
                stream.out.put(statuses[kind])
            elif kind == "silent":
                stream.silent = True
            elif kind == "oversized":
                stream.out.put(b"\x0a\x08pumpsync" + b"\x22" + _len(size) + bytes(size))
        return len(streams)


def _len(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


__all__ = ["GeyserServer"]
