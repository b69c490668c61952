"""The simulated Solana node's faults, on the :class:`~pumpsync.simulator.Simulator` (``sim.solana_*``)."""

from __future__ import annotations

from pumpsync.simulator._controls import LoopHost
from pumpsync.simulator.solana import (
    INJECT_KINDS,
    NEXT_FAULTS,
    OVERSIZED_DEFAULT,
    InjectKind,
    LayoutName,
    NextFault,
    SolanaServer,
)


class SolanaControls(LoopHost):
    """Faults only the simulated Solana node has (``solana_*``)."""

    def _solana(self) -> SolanaServer:
        server = self._server("solana")
        assert isinstance(server, SolanaServer)
        return server

    def solana_layout(self, layout: LayoutName) -> None:
        """Event layout of every transaction from now on: ``current`` (free-sources.md),
        ``extended`` (fields appended: the next program upgrade) or ``legacy`` (the shorter
        April 2025 layouts)."""
        server = self._solana()

        async def run() -> None:
            server.set_layout(layout)

        self._call(run())

    def solana_next(self, fault: NextFault, n: int = 1, size: int = OVERSIZED_DEFAULT) -> None:
        """Alter the next ``n`` market transactions: ``truncated`` (logs cut at 10 kB with a
        ``Log truncated`` line, no ``Program data`` line left; getTransaction's inner
        instructions still carry the events) or ``oversized`` (about ``size`` bytes of extra
        log lines after the events: frames over 1 MiB)."""
        if fault not in NEXT_FAULTS or n < 0:
            raise ValueError(f"fault must be one of {NEXT_FAULTS} and n >= 0")
        server = self._solana()

        async def run() -> None:
            server.fault_next(fault, n, size)

        self._call(run())

    def solana_inject(self, kind: InjectKind, n: int = 1) -> list[str]:
        """Stream ``n`` extra transactions now (not market events); returns their signatures.
        ``failed``: a buy whose transaction failed (err set, its Program data line still in
        the logs); ``unknown_event``: an event with a discriminator outside the feed's table;
        ``undecodable``: Program data lines that are not base64 / shorter than a discriminator.
        They are in the history (getSignaturesForAddress / getTransaction) like any other."""
        if kind not in INJECT_KINDS or n < 0:
            raise ValueError(f"kind must be one of {INJECT_KINDS} and n >= 0")
        server = self._solana()

        async def run() -> list[str]:
            return server.inject(kind, n)

        return self._call(run())

    def solana_mute_subscribe(self, mute: bool = True) -> None:
        """A node that never answers ``logsSubscribe`` (no reply, no notifications)."""
        server = self._solana()

        async def run() -> None:
            server.mute_subscribe = mute

        self._call(run())

    def solana_subscribe_errors(self, n: int, code: int = 429, message: str = "Too many requests") -> None:
        """Answer the next ``n`` ``logsSubscribe`` requests with this JSON-RPC error object
        (e.g. a rate limit, or -32401 for a node that refuses a key over JSON-RPC)."""
        server = self._solana()

        async def run() -> None:
            server.subscribe_errors.extend([(code, message)] * n)

        self._call(run())

    def solana_idle_timeout(self, seconds: float | None) -> None:
        """Close (1001 "idle timeout") connections whose client sent nothing, not even a
        WebSocket ping, for ``seconds``; None (the default) never does."""
        if seconds is not None and seconds <= 0:
            raise ValueError("seconds must be > 0 or None")
        server = self._solana()

        async def run() -> None:
            server.idle_timeout = seconds

        self._call(run())

    def solana_rpc_calls(self) -> dict[str, int]:
        """The node's HTTP JSON-RPC calls so far, by method."""
        server = self._solana()

        async def run() -> dict[str, int]:
            return dict(server.rpc_calls)

        return self._call(run())

    def solana_subscribe_requests(self) -> int:
        """``logsSubscribe`` requests the node received, answered or not."""
        server = self._solana()

        async def run() -> int:
            return server.subscribe_requests

        return self._call(run())
