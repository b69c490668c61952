"""Per-connection server state and the public snapshots of it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.protocol import State

Form = Literal["v1", "document"]


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str | None  # the v1 subscription id; None for document-form subscriptions
    channel: str
    filters: dict[str, Any]


@dataclass(frozen=True)
class ConnectionInfo:
    provider: str
    index: int
    form: Form | None  # Anaxer: None while unknown; OpenPump: always None (one form)
    subscriptions: list[SubscriptionInfo]
    pings_sent: int  # server application-level pings (Anaxer document form)
    pongs_received: int  # client {"type":"pong"} answers to those
    client_pings: int  # client {"type":"ping"} messages
    key_plan: str
    remote: tuple[str, int]
    stalled: bool = False
    ready: bool = False  # OpenPump: the connected frame went out

    @property
    def subscribed(self) -> bool:
        """Receiving market data: an Anaxer subscription, or an OpenPump stream."""
        return bool(self.subscriptions) or (self.provider == "openpump" and self.ready)


@dataclass
class Subscription:
    channel: str
    filters: dict[str, Any]  # normalized, used for matching
    raw_filters: dict[str, Any]  # as the client sent them (echoed in the v1 ack)
    id: str | None = None
    form: Form = "document"


@dataclass(eq=False)
class Conn:
    """Server-side state of one accepted connection. Holds no API key."""

    ws: ServerConnection
    provider: str
    index: int
    key_id: str
    plan_name: str
    remote: tuple[str, int]
    form: Form | None = None
    subs: dict[str, Subscription] = field(default_factory=dict)
    pings_sent: int = 0
    pongs_received: int = 0
    client_pings: int = 0
    stalled: bool = False
    ready: bool = False
    pong_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __repr__(self) -> str:
        return f"Conn({self.provider}#{self.index} plan={self.plan_name} form={self.form})"

    @property
    def is_open(self) -> bool:
        return self.ws.protocol.state is State.OPEN

    def send(self, message: str | bytes) -> bool:
        """Queue one frame now, without awaiting, so frames keep the order of the calls."""
        if self.stalled or not self.is_open:
            return False
        broadcast([self.ws], message)
        return True

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()

    def stall(self) -> None:
        # Not reading also stops websockets from answering protocol pings.
        self.stalled = True
        if not self.ws.transport.is_closing():
            self.ws.transport.pause_reading()

    def unstall(self) -> None:
        self.stalled = False
        if not self.ws.transport.is_closing():
            self.ws.transport.resume_reading()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.ws.transport.abort()

    def snapshot(self) -> ConnectionInfo:
        return ConnectionInfo(
            provider=self.provider,
            index=self.index,
            form=self.form,
            subscriptions=[SubscriptionInfo(s.id, s.channel, dict(s.raw_filters)) for s in self.subs.values()],
            pings_sent=self.pings_sent,
            pongs_received=self.pongs_received,
            client_pings=self.client_pings,
            key_plan=self.plan_name,
            remote=self.remote,
            stalled=self.stalled,
            ready=self.ready,
        )
