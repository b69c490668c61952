"""What a provider module declares: everything the generic core needs to know about a source.

A provider is one module in ``pumpsync/providers/`` that exports ``SPEC = ProviderSpec(...)``
and one line in the registry (``pumpsync/providers/__init__.py``). Generic modules read the
spec; they never test a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import threading

    from pumpsync.config import ClientConfig
    from pumpsync.events import Event
    from pumpsync.providers.base import Dialect

# How a connection proves it is alive:
# "app"     the dialect's own ping message (``Dialect.ping()``), answered by a ``Pong`` output;
# "ws_ping" WebSocket ping frames, answered by pong frames (JSON-RPC nodes have no application ping);
# "server"  the server pings us (the dialect answers with ``Reply``); we only watch for staleness;
# "none"    nothing to send; staleness is still watched where ``stale`` is true.
Heartbeat = Literal["app", "ws_ping", "server", "none"]
AuthForm = Literal["query", "header", "none"]


@dataclass(frozen=True, order=True)
class Position:
    """Where a stream was: the slot and, where the history source wants it, the signature
    (Solana's ``getSignaturesForAddress(until=...)``) of the newest event seen."""

    slot: int
    signature: str | None = field(default=None, compare=False)


class HistorySource(Protocol):
    """Gap recovery for one provider: what can be fetched again, and how.

    ``fetch`` yields pages of events (oldest first within the whole answer is not required:
    the gap recovery sorts by slot) from ``since`` on, inclusive, so that the recovery can
    release them page by page, paced to the consumer. It raises ``HistoryError`` when the
    history cannot be had (after its own bounded retries); ``stop`` set means the client is
    closing: return promptly.
    """

    # True: one position serves every channel (one subscription carries them all; Solana).
    # False: each channel has a position of its own (Anaxer's per-channel REST lists).
    stream_wide: bool

    def recoverable(self, channel: str) -> bool: ...

    def fetch(
        self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: threading.Event
    ) -> Iterator[list[Event]]: ...

    def close(self) -> None: ...


class HistoryError(Exception):
    """History could not be fetched (after retries); the message is safe to log (no key)."""


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the core needs to know about one provider."""

    name: str
    summary: str  # one line for ``--help`` and the README
    dialect: type[Dialect]
    default_url: str
    url_schemes: tuple[str, ...] = ("ws", "wss")
    channels: tuple[str, ...] = ()  # () = no channels: every event of the stream arrives
    default_channels: tuple[str, ...] = ()
    # Per channel, the filter keys the provider (or pumpsync, locally) understands.
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    auth_forms: tuple[AuthForm, ...] = ("query", "header")
    default_auth: AuthForm = "query"
    key_required: bool = True
    heartbeat: Heartbeat = "app"
    max_frame_size: int = 1024 * 1024
    max_connections: int | None = None  # None: as many as the user asks for
    max_connections_reason: str = ""
    # Builds the history source for gap recovery (None: the provider has no history).
    history: Callable[[ClientConfig], HistorySource] | None = None
    # Options only this provider takes (e.g. ``commitment``), with their defaults.
    options: Mapping[str, Any] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()  # e.g. {"status"}: ``Client.status()`` works


__all__ = ["AuthForm", "Heartbeat", "HistoryError", "HistorySource", "Position", "ProviderSpec"]
