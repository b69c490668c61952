"""The simulator's fault injection, a thread-safe synchronous surface over the servers' loop:
:class:`LoopHost` (what every control reaches: the loop, the servers), :class:`FaultControls`
(connections dropped, closed, stalled, refused; malformed frames; REST failures)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from websockets.exceptions import ProtocolError
from websockets.frames import Close

from pumpsync.simulator.anaxer import AnaxerServer
from pumpsync.simulator.faults import MALFORMED_KINDS, MalformedKind, Reject, RestFailure
from pumpsync.simulator.server import ProviderServer
from pumpsync.simulator.solana import SolanaServer

CALL_TIMEOUT = 10.0
T = TypeVar("T")


class LoopHost:
    """The servers and the loop that runs them (the :class:`~pumpsync.simulator.Simulator` sets them up)."""

    providers: tuple[str, ...]
    _servers: dict[str, ProviderServer]
    _loop: asyncio.AbstractEventLoop | None
    _thread: threading.Thread | None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = CALL_TIMEOUT) -> T:
        loop = self._loop
        if loop is None or self._thread is None or loop.is_closed():
            coro.close()
            raise RuntimeError("simulator is not running; call start() or use it in a with block")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _server(self, provider: str) -> ProviderServer:
        try:
            return self._servers[provider]
        except KeyError:
            raise ValueError(f"provider {provider!r} is not simulated (have {self.providers})") from None

    def _targets(self, provider: str | None) -> list[ProviderServer]:
        return list(self._servers.values()) if provider is None else [self._server(provider)]

    def _fanout(self, provider: str | None, action: Callable[[ProviderServer], Any]) -> int:
        async def run() -> int:
            total = 0
            for server in self._targets(provider):
                result = action(server)
                total += int(await result if asyncio.iscoroutine(result) else result or 0)
            return total

        return self._call(run())


class FaultControls(LoopHost):
    """Faults any provider's server takes (``provider=None``: every one; ``index``: one connection)."""

    def drop(self, provider: str | None = None, index: int | None = None) -> int:
        """Abort connections: no close frame, the TCP connection just ends."""
        return self._fanout(provider, lambda s: s.drop(index))

    def close(self, code: int, reason: str = "", provider: str | None = None, index: int | None = None) -> int:
        try:
            Close(code, reason).check()
        except ProtocolError:
            raise ValueError(f"{code} cannot be sent in a close frame") from None
        return self._fanout(provider, lambda s: s.close(code, reason, index))

    def stall(self, provider: str | None = None, index: int | None = None) -> int:
        """Half-open: send nothing to these connections and read nothing from them."""
        return self._fanout(provider, lambda s: s.stall(index, True))

    def unstall(self, provider: str | None = None, index: int | None = None) -> int:
        return self._fanout(provider, lambda s: s.stall(index, False))

    def ignore_pings(self, ignore: bool = True, provider: str | None = None) -> None:
        def apply(server: ProviderServer) -> int:
            server.ignore_pings = ignore
            return 0

        self._fanout(provider, apply)

    def send_malformed(
        self,
        kind: MalformedKind,
        provider: str | None = None,
        index: int | None = None,
        size: int = 2 * 1024 * 1024,
    ) -> int:
        if kind not in MALFORMED_KINDS:
            raise ValueError(f"kind must be one of {MALFORMED_KINDS}, got {kind!r}")
        return self._fanout(provider, lambda s: s.send_malformed(kind, index, size))

    def restart(self, provider: str | None = None, downtime: float = 0.0) -> None:
        """Drop every connection, stop listening, wait ``downtime``, listen again on the same
        port. Returns once listening again; the market keeps running meanwhile."""

        async def run() -> None:
            await asyncio.gather(*(s.restart(downtime) for s in self._targets(provider)))

        self._call(run(), CALL_TIMEOUT + downtime)

    def reject_next(
        self, n: int, provider: str | None = None, status: int = 503, close_code: int | None = None
    ) -> None:
        """Refuse the next ``n`` connection attempts (per provider): an HTTP ``status`` answer
        to the upgrade, or, with ``close_code``, accept and close at once."""
        reject = Reject(status, close_code)

        def apply(server: ProviderServer) -> int:
            server.rejects.extend([reject] * n)
            return 0

        self._fanout(provider, apply)

    def rest_fail_next(self, n: int, status: int = 429, retry_after: float = 1.0, provider: str = "anaxer") -> None:
        """The next ``n`` Anaxer REST requests (Solana: HTTP JSON-RPC history calls) fail with
        ``status`` (429 with Retry-After)."""
        server = self._server(provider)
        if not isinstance(server, (AnaxerServer, SolanaServer)):
            raise ValueError(f"{provider} has no HTTP API")

        async def run() -> None:
            server.rest_failures.extend([RestFailure(status, retry_after)] * n)

        self._call(run())
