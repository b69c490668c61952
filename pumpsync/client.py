"""The blocking client: threads in, a plain queue out."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from pumpsync._backfill import Backfiller
from pumpsync._connection import Connection, Outcome, Owner
from pumpsync._delivery import Delivery, Item
from pumpsync._handoff import HandOffQueue
from pumpsync._secrets import ApiKey
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync._supervisor import Supervisor
from pumpsync.config import ClientConfig, make_config, parse_channels
from pumpsync.errors import ClientClosed, PumpsyncError
from pumpsync.events import Event
from pumpsync.providers import dialect_class
from pumpsync.providers.base import (
    Dialect,
    Fatal,
    Hello,
    Notice,
    Output,
    Rejected,
    StatusReport,
    Subscribed,
    Subscription,
)

log = logging.getLogger("pumpsync")


class Client(Owner):
    """A live stream from one provider over one or more redundant connections.

    ``client.queue`` is a thread-safe queue with ``queue.SimpleQueue``'s methods (``get``,
    ``get_nowait``, ``put``, ``qsize``, ``empty``; ``queue.Empty`` on timeout). Its items are
    :class:`~pumpsync.Event` objects and, rarely, :class:`~pumpsync.errors.PumpsyncError`
    instances: a :class:`SubscriptionRejected` (the other channels go on), a fatal error
    (the last item), or :class:`ClientClosed` once :meth:`close` has run. :meth:`get` and
    iteration raise those for you.
    """

    def __init__(
        self,
        provider: str = "openpump",
        *,
        api_key: str | ApiKey | None = None,
        channels: Any = None,
        url: str | None = None,
        **options: Any,
    ) -> None:
        self.config: ClientConfig = make_config(provider, api_key=api_key, channels=channels, url=url, **options)
        config = self.config
        connection_stats = [ConnectionStats(i) for i in range(config.connections)]
        self._stats = ClientStats(provider, config.queue_size, connection_stats)
        self._delivery = Delivery(self._stats, config.queue_size, max(config.dedup_size, 2 * config.queue_size))
        self.queue: HandOffQueue[Item] = self._delivery.queue
        self._registry_lock = threading.Lock()
        self._registry: dict[str, Subscription] = {sub.channel: sub for sub in config.channels}
        self._rejected: set[str] = set()
        self._since_pending = config.since is not None
        # Per connection index: the gap its new session must back-fill, and the acks still awaited.
        self._gaps: dict[int, dict[str, tuple[dict[str, Any], int]]] = {}
        self._gap_acks: dict[int, set[str]] = {}
        self._carried_gap: dict[str, tuple[dict[str, Any], int]] = {}
        dialect = dialect_class(provider)
        self._connections = [
            Connection(i, config, dialect, self._delivery, connection_stats[i], self) for i in range(config.connections)
        ]
        self._supervisor = Supervisor(config, self._connections, self._fail)
        self._backfiller = (
            Backfiller(config, self._delivery, self._stats, self.subscriptions) if provider == "anaxer" else None
        )
        self._status_lock = threading.Lock()
        self._status_reply: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._lifecycle = threading.Lock()
        self._state = "new"
        self.error: PumpsyncError | None = None

    def __repr__(self) -> str:
        return f"<pumpsync.Client {self.config.provider} {self._state} connections={len(self._connections)}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Client:
        with self._lifecycle:
            if self._state != "new":
                raise PumpsyncError(f"the client is already {self._state}")
            self._state = "running"
        for conn in self._connections:
            conn.start()
        if self._backfiller is not None:
            self._backfiller.start()
        self._supervisor.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Close every connection and end every thread this client started (within ``timeout``)."""
        with self._lifecycle:
            if self._state in ("closed", "new"):
                self._state = "closed"
                return
            self._state = "closed"
        deadline = time.monotonic() + timeout
        self._supervisor.stop()
        for conn in self._connections:
            conn.stop()
        if self._backfiller is not None:
            self._backfiller.stop()

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        stragglers = [] if self._supervisor.join(remaining()) else ["supervisor"]
        stragglers += [f"connection {c.index}" for c in self._connections if not c.join(remaining())]
        if self._backfiller is not None and not self._backfiller.join(remaining()):
            stragglers.append("backfill")
        if stragglers:
            log.warning("close(): still running after %.1f s: %s", timeout, ", ".join(stragglers))
        self._delivery.fail(ClientClosed("the client was closed"))

    def __enter__(self) -> Client:
        if self._state == "new":
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ consuming
    def get(self, timeout: float | None = None) -> Event:
        """The next event; raises the error items (see the class docs) and ``queue.Empty`` on timeout."""
        item = self.queue.get(timeout=timeout)
        if isinstance(item, PumpsyncError):
            if item.fatal or isinstance(item, ClientClosed):
                self.queue.put(item)  # keep it there for the next reader
            raise item
        return item

    def __iter__(self) -> Iterator[Event]:
        """Events until :meth:`close`; raises fatal errors and subscription rejections."""
        while True:
            try:
                yield self.get()
            except ClientClosed:
                return

    def raise_for_error(self) -> None:
        """Raise the fatal error that stopped the client, if any."""
        if self.error is not None:
            raise self.error

    # ------------------------------------------------------------------ subscriptions
    def subscriptions(self) -> list[Subscription]:
        with self._registry_lock:
            return list(self._registry.values())

    def subscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Add (or replace) a channel at runtime; it is restored on every reconnect."""
        (sub,) = parse_channels(self.config.provider, {channel: filters})
        with self._registry_lock:
            replaced = channel in self._registry
            self._registry[channel] = sub
            self._rejected.discard(channel)
            for conn in self._connections:
                if replaced:
                    conn.with_dialect(lambda d: d.unsubscribe(channel))
                conn.with_dialect(lambda d: d.subscribe(sub))

    def unsubscribe(self, channel: str) -> None:
        """Stop a channel without closing the connection."""
        with self._registry_lock:
            if self._registry.pop(channel, None) is None:
                raise PumpsyncError(f"not subscribed to {channel!r}")
            for conn in self._connections:
                conn.with_dialect(lambda d: d.unsubscribe(channel))

    # ------------------------------------------------------------------ requests
    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the provider for its stream status (OpenPump's ``{"type":"status"}``)."""
        with self._status_lock:
            conn = next((c for c in self._connections if c.is_open), None)
            if conn is None:
                raise PumpsyncError("no open connection to ask")
            while not self._status_reply.empty():
                self._status_reply.get_nowait()
            if not conn.with_dialect(_status_request):
                raise PumpsyncError("could not send the status request")
            try:
                return self._status_reply.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no status reply within {timeout} s") from None

    # ------------------------------------------------------------------ health
    @property
    def supervisor_alive(self) -> bool:
        """The supervisor thread runs (for watchdogs: heartbeats and reconnects depend on it)."""
        return self._supervisor.alive

    @property
    def connected(self) -> bool:
        """At least one connection is open."""
        return any(c.is_open for c in self._connections)

    @property
    def ready(self) -> bool:
        """At least one connection is healthy: open, and something arrived within ``stale_timeout``.

        The supervisor's verdict (the same one ``/readyz``, sd_notify and the metrics report)."""
        return self._supervisor.ready

    def stats(self) -> dict[str, Any]:
        snapshot = self._stats.snapshot()
        snapshot["queue_depth"] = self.queue.qsize()
        snapshot["queue_capacity"] = self.config.queue_size
        return snapshot

    @property
    def raw_stats(self) -> ClientStats:
        """The live counters (read-only by convention), for the metrics collector."""
        return self._stats

    # ------------------------------------------------------------------ Owner: reports from connection threads
    def session_opened(self, conn: Connection) -> None:
        self._supervisor.wake()
        gap = self._gap_to_recover(conn)
        if gap:
            # Live events wait until the gap is back; the REST fetch starts once every channel is
            # live again (acknowledged), so that its answer reaches past the moment the stream resumed.
            self._delivery.hold(max(10.0, 2 * self.config.backoff_max))
            self._gaps[conn.index] = gap

    def _gap_to_recover(self, conn: Connection) -> dict[str, tuple[dict[str, Any], int]]:
        """The channels this new session must back-fill, with the slot to start from."""
        if self._backfiller is None or not self.config.backfill:
            return {}
        subs = {sub.channel: sub for sub in self.subscriptions() if self._backfiller.recoverable(sub.channel)}
        if self._since_pending:
            self._since_pending = False
            since: dict[str, int | None] = dict.fromkeys(subs, self.config.since)
        elif conn.sessions > 1 and not any(c.is_open and c is not conn for c in self._connections):
            # A quiet channel has seen nothing of late: anything of it before the newest slot seen on
            # any channel was delivered live, so start there.
            last = self._delivery.last_slot
            newest = max(last.values(), default=None)
            since = {ch: last.get(ch, newest) for ch in subs}
        else:
            return {}
        gap = {ch: (dict(subs[ch].filters), slot) for ch, slot in since.items() if slot is not None}
        carried, self._carried_gap = self._carried_gap, {}
        return _merge_gaps(gap, {ch: v for ch, v in carried.items() if ch in subs})

    def _channel_live(self, conn: Connection, channel: str) -> None:
        """A channel of ``conn`` was acknowledged (or refused): start the gap's backfill once all are."""
        gap = self._gaps.get(conn.index)
        if gap is None or channel not in gap:
            return
        pending = self._gap_acks.setdefault(conn.index, set(gap))
        pending.discard(channel)
        if not pending:
            self._gap_acks.pop(conn.index, None)
            del self._gaps[conn.index]
            assert self._backfiller is not None
            self._backfiller.request(gap, held=True)

    def session_ended(self, conn: Connection, outcome: Outcome) -> None:
        self._stats.connections[conn.index].disconnects[(outcome.reason, str(outcome.code or ""))] += 1
        unfinished = self._gaps.pop(conn.index, None)
        if unfinished is not None:  # the session ended before its backfill began: the next one inherits it
            self._gap_acks.pop(conn.index, None)
            self._carried_gap = _merge_gaps(self._carried_gap, unfinished)
            self._delivery.release((), held=True)
        if outcome.refusal is not None:
            conn.stats.set_state("failed")
            self._fail(outcome.refusal)
            return
        self._supervisor.session_ended(conn, outcome)

    def control(self, conn: Connection, output: Output) -> None:
        if isinstance(output, StatusReport):
            self._status_reply.put(output.data)
        elif isinstance(output, Subscribed):
            log.info("connection %d: subscribed to %s", conn.index, output.channel)
            self._channel_live(conn, output.channel)
        elif isinstance(output, Rejected):
            self._reject(output)
            gap = self._gaps.get(conn.index)
            if gap is not None and output.error.channel in gap:
                self._channel_live(conn, output.error.channel)
        elif isinstance(output, Fatal):
            self._fail(output.error)
        elif isinstance(output, Notice):
            self._stats.notices[output.code] += 1
            log.warning(
                "connection %d: %s reports %s: %s", conn.index, self.config.provider, output.code, output.message
            )
        elif isinstance(output, Hello):
            log.debug("connection %d: greeted by %s", conn.index, self.config.provider)

    def _reject(self, output: Rejected) -> None:
        channel = output.error.channel
        with self._registry_lock:
            if channel in self._rejected:
                return  # one report per channel, however many connections were refused
            self._rejected.add(channel)
            self._registry.pop(channel, None)
        self._stats.rejected[channel] += 1
        log.warning("%s", output.error)
        self._delivery.fail(output.error)

    def _fail(self, error: PumpsyncError) -> None:
        """A fatal error: stop everything, tell the consumer. Safe from any thread."""
        with self._lifecycle:
            if self.error is not None:
                return
            self.error = error
        log.error("%s", error)
        self._supervisor.stop()
        for conn in self._connections:
            conn.stop()
        self._delivery.fail(error)


def _merge_gaps(
    a: dict[str, tuple[dict[str, Any], int]], b: dict[str, tuple[dict[str, Any], int]]
) -> dict[str, tuple[dict[str, Any], int]]:
    """Per channel, the earlier starting slot of two gaps."""
    merged = dict(a)
    for channel, (filters, slot) in b.items():
        if channel not in merged or slot < merged[channel][1]:
            merged[channel] = (filters, slot)
    return merged


def _status_request(dialect: Dialect) -> list[str]:
    frame = dialect.status_request()
    if frame is None:
        raise PumpsyncError(f"{dialect.provider} has no status request")
    return [frame]


def connect(provider: str = "openpump", **options: Any) -> Client:
    """Start a :class:`Client`; use it as a context manager and iterate over it."""
    return Client(provider, **options).start()
