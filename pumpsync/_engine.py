"""One source's engine: its connections, dialect, supervisor, gap recovery, registry and counters.

A :class:`~pumpsync.Client` is built from one engine per source (one for a single provider,
several for ``sources=[...]``); the engines share the client's :class:`~pumpsync._delivery.Merge`
(one queue, one de-duplication window, one race). The engine owns and starts its children and
hears from them through callbacks given at construction (weak ones: ``_threads.upward``); it
reports upward the same way: a failure for good goes to ``on_failed``, lifecycle notices to the
client's hooks. It never reaches into its owner, and nothing reaches into it but its owner.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pumpsync._connection import Connection, Outcome, Reports
from pumpsync._delivery import Delivery, Merge
from pumpsync._endpoint import close_code_elsewhere, foreign_greeting, wrong_endpoint
from pumpsync._gaps import GapReport
from pumpsync._hooks import ConnectInfo, DisconnectInfo, Hooks
from pumpsync._recovery import GapRecovery
from pumpsync._secrets import safe_url
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync._subscriptions import Registry
from pumpsync._supervisor import Supervisor
from pumpsync._text import WarningGate, bounded_label, log_safe
from pumpsync._threads import upward
from pumpsync.config import ClientConfig, parse_channels
from pumpsync.errors import ClientClosed, ProviderRefused, PumpsyncError, RequestTimeout, ThreadFailed, UsageError
from pumpsync.events import Event
from pumpsync.providers.base import (
    Dialect,
    Hello,
    Notice,
    Output,
    Refetch,
    Rejected,
    StatusReport,
    Subscribed,
    Subscription,
)
from pumpsync.providers.spec import Outgoing, Transport

log = logging.getLogger("pumpsync")

# ``(source name, error)``: the engine has failed for good and stopped its threads.
FailureListener = Callable[[str, PumpsyncError], None]


class Engine:
    """One source of a client (see the module docs). ``name`` labels it in logs, hooks and
    statistics; ``label`` (several sources: the name) is set on the events it delivers first."""

    def __init__(
        self,
        config: ClientConfig,
        name: str,
        merge: Merge,
        index: int,
        on_failed: FailureListener,
        hooks: Hooks | None = None,
        label: str | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._on_failed = on_failed
        self._hooks = hooks
        spec = config.spec
        connection_stats = [ConnectionStats(i) for i in range(config.connections)]
        self._stats = ClientStats(name, config.queue_size, connection_stats)
        self._delivery = Delivery(self._stats, config.queue_size, merge.seen.size, merge, index, config.provider, label)
        self._registry = Registry(config.channels, spec.dialect.merge, spec.dialect.remove)
        self._notice_gate = WarningGate()
        dialect_options = {option: getattr(config, option) for option in spec.dialect.config_options}
        dialect_factory = functools.partial(spec.dialect, **dialect_options) if dialect_options else spec.dialect
        reports = Reports(
            upward(self._session_opened), upward(self._session_ended), upward(self._control), self._registry.snapshot
        )
        self._connections = [
            Connection(i, config, dialect_factory, self._delivery, connection_stats[i], reports, name)
            for i in range(config.connections)
        ]
        # Feeds told of each event the consumer is done with (EventFeed.consumed: redis commits on it).
        takers: list[Callable[[Event], None] | None] = [
            c.feed.consumed if c.feed is not None and c.feed.acknowledges else None for c in self._connections
        ]
        self.takers: list[Callable[[Event], None] | None] | None = takers if any(takers) else None
        self._recovery: GapRecovery | None = None
        if spec.history is not None:
            on_gap = None if hooks is None else functools.partial(hooks.notify, "on_gap")
            self._recovery = GapRecovery(
                config, spec.history(config), self._delivery, self._stats, self._registry.snapshot, on_gap
            )
        watched: list[tuple[str, Callable[[], bool]]] = [
            ("connection", functools.partial(_alive, conn)) for conn in self._connections
        ]
        if self._recovery is not None:
            watched.append(("backfill", functools.partial(_alive, self._recovery)))
        self._supervisor = Supervisor(
            config, self._connections, upward(self._fail), watched, upward(self._thread_failed), name
        )
        self._status_lock = threading.Lock()
        self._status_reply: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._fail_lock = threading.Lock()  # a leaf: guards ``error`` only
        self.error: PumpsyncError | None = None

    def __repr__(self) -> str:
        return f"<pumpsync engine {self.name} connections={len(self._connections)}>"

    # ------------------------------------------------------------------ lifecycle (the owner's)
    def start(self, keepalive: object = None) -> None:
        """Start every thread; ``keepalive`` (the client) stays alive while the supervisor runs."""
        for conn in self._connections:
            conn.start()
        if self._recovery is not None:
            self._recovery.start()
        self._supervisor.start(keepalive)

    def stop(self) -> None:
        """Tell every thread to end (returns at once; see :meth:`join`)."""
        self._halt()
        if self._recovery is not None:
            self._recovery.stop()

    def _halt(self) -> None:
        """No more connections: the supervisor and the connection threads end."""
        self._supervisor.stop()
        for conn in self._connections:
            conn.stop()

    def join(self, deadline: float) -> list[str]:
        """Wait for the threads until ``deadline`` (monotonic); the ones still running."""

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        stragglers = [] if self._supervisor.join(remaining()) else ["supervisor"]
        stragglers += [f"connection {c.index}" for c in self._connections if not c.join(remaining())]
        if self._recovery is not None and not self._recovery.join(remaining()):
            stragglers.append("backfill")
        return stragglers

    def discard(self) -> None:
        """Never started: release what construction opened (the history source's connections)."""
        if self._recovery is not None:
            self._recovery.source.close()

    def free(self) -> None:
        """Closed: give back the de-duplication tables and the held events at once."""
        self._delivery.free()

    # ------------------------------------------------------------------ subscriptions
    def subscriptions(self) -> list[Subscription]:
        """The channels subscribed to now (with their filters): restored on every reconnect."""
        return self._registry.snapshot()

    def subscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Add (or replace) a channel at runtime (see :meth:`pumpsync.Client.subscribe`)."""
        (sub,) = parse_channels(self.config.provider, {channel: filters})
        self._registry.add(sub)
        self._sync(channel)

    def unsubscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        """Stop a channel, or only some of its keys (see :meth:`pumpsync.Client.unsubscribe`)."""
        self._registry.remove(channel, filters)
        self._sync(channel)

    def _sync(self, channel: str) -> None:
        """Bring every connection's dialect to the registry's entry for ``channel``: no lock is held
        here; each connection applies the entry it reads under its own lock (and sends after it)."""
        frames_for = functools.partial(self._registry.frames_for, channel)
        for conn in self._connections:
            conn.with_dialect(frames_for)

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Ask the provider for its stream status (see :meth:`pumpsync.Client.status`)."""
        if "status" not in self.config.spec.capabilities:
            raise UsageError(f"{self.config.provider} has no status request")
        with self._status_lock:
            conn = next((c for c in self._connections if c.is_open), None)
            if conn is None:
                raise UsageError("no open connection to ask (wait until client.connected)")
            while not self._status_reply.empty():
                self._status_reply.get_nowait()
            if not conn.with_dialect(_status_request):
                raise UsageError("could not send the status request (the connection just closed)")
            try:
                return self._status_reply.get(timeout=timeout)
            except queue.Empty:
                raise RequestTimeout(f"no status reply within {timeout} s") from None

    # ------------------------------------------------------------------ health and counters
    @property
    def supervisor_alive(self) -> bool:
        return self._supervisor.alive

    @property
    def transports(self) -> tuple[Transport, ...]:
        return tuple(c.transport for c in self._connections)

    @property
    def connected(self) -> bool:
        return any(c.is_open for c in self._connections)

    @property
    def ready(self) -> bool:
        """A healthy connection (the supervisor's verdict), and no gap being recovered."""
        return self._supervisor.ready and (self._recovery is None or self._recovery.settled)

    @property
    def has_history(self) -> bool:
        return self._recovery is not None

    @property
    def raw_stats(self) -> ClientStats:
        """The live counters (read-only by convention)."""
        return self._stats

    def stats(self) -> dict[str, Any]:
        """This source's counters (see :meth:`pumpsync.Client.stats`)."""
        snapshot = self._stats.snapshot()
        snapshot["queue_depth"] = self._delivery.queue.qsize()
        snapshot["queue_capacity"] = self.config.queue_size
        if self._recovery is not None:
            snapshot["history"] = self.history_stats()
            snapshot["gaps"] = self.gap_counts()
        return snapshot

    def gaps(self) -> list[GapReport]:
        return [] if self._recovery is None else self._recovery.gaps()

    def gap_counts(self) -> dict[str, int]:
        return {} if self._recovery is None else self._recovery.gap_counts()

    def history_stats(self) -> dict[str, int]:
        return {} if self._recovery is None else self._recovery.source_stats()

    # ------------------------------------------------------------------ failing
    def _thread_failed(self, kind: str, detail: str) -> None:
        """One of this source's threads ended unexpectedly: counted, and the source fails loudly."""
        self._stats.thread_failures[kind] += 1
        self._fail(
            ThreadFailed(f"internal error: the {kind} thread ended unexpectedly ({detail}); please report it", kind)
        )

    def _fail(self, error: PumpsyncError) -> None:
        """A fatal error of this source: stop its threads, report upward. Safe from any thread."""
        with self._fail_lock:
            if self.error is not None:
                return
            self.error = error
        # The CLI prints a fatal error itself (see setup_logging); the end of a replay is no error.
        level = logging.INFO if isinstance(error, ClientClosed) else logging.ERROR
        log.log(level, "%s", error, extra={"pumpsync_fatal": True})
        self._halt()  # the recovery thread ends at close (it may still be releasing a page)
        self._on_failed(self.name, error)

    # ------------------------------------------------------------------ reports of the connection threads
    def _session_opened(self, conn: Connection) -> None:
        self._supervisor.wake()
        hooks = self._hooks
        if hooks is not None:
            now = time.time()
            url = safe_url(self.config.url_of(conn.index))
            hooks.notify("on_connect", ConnectInfo(self.name, conn.index, url, conn.sessions > 1))
            since = hooks.came_back(self.name)
            # The whole source was down: what was sent meanwhile is missing. A source with history
            # reports its gap from the recovery (recovered, partial or lost); one without, here.
            if since is not None and self._recovery is None:
                detail = f"no connection of {self.name} was open for {now - since:.1f} s"
                gap = GapReport(
                    0, self.config.provider, None, since, "lost", closed_at=now, reason=detail, source=self.name
                )
                hooks.notify("on_gap", gap)
        if self._recovery is not None:
            # After an outage of the whole source (no other connection kept the stream).
            resumed = conn.sessions > 1 and not self._others_open(conn)
            self._recovery.session_opened(conn.index, resumed)

    def _others_open(self, conn: Connection) -> bool:
        return any(c.is_open and c is not conn for c in self._connections)

    def _session_ended(self, conn: Connection, outcome: Outcome) -> None:
        hooks = self._hooks
        if hooks is not None:
            info = DisconnectInfo(self.name, conn.index, outcome.reason, outcome.code, outcome.detail or "")
            hooks.notify("on_disconnect", info)
            if not self._others_open(conn):
                hooks.went_down(self.name, time.time())
        self._stats.connections[conn.index].disconnects[(outcome.reason, str(outcome.code or ""))] += 1
        if outcome.reason == "internal_error":  # a session died of a bug of ours: counted, and the slot reconnects
            self._stats.thread_failures["connection"] += 1
        if self._recovery is not None:
            self._recovery.session_ended(conn.index)
        if outcome.refusal is not None:
            conn.stats.set_state("failed")
            self._fail(_with_endpoint_hint(outcome.refusal))
            return
        self._supervisor.session_ended(conn, outcome)

    def _control(self, conn: Connection, output: Output) -> None:
        recovery = self._recovery
        if isinstance(output, StatusReport):
            self._status_reply.put(output.data)
        elif isinstance(output, Subscribed):
            log.info("connection %d: subscribed to %s", conn.index, output.channel)
            if recovery is not None:
                recovery.channel_live(conn.index, output.channel)
        elif isinstance(output, Rejected):
            self._reject(output)
            if recovery is not None:
                recovery.channel_live(conn.index, output.error.channel)
        elif isinstance(output, Refetch):
            # Without a source that can fetch one item, the loss stays counted (the dialect's Malformed).
            if recovery is not None:
                recovery.refetch(output.key, output.slot)
        elif isinstance(output, Notice):
            self._notice(conn, output)
        elif isinstance(output, Hello):
            log.debug("connection %d: greeted by %s", conn.index, self.config.provider)
            other = foreign_greeting(self.config.provider, output.info)
            if other is not None:  # another provider's stream: retrying the same URL cannot help
                message = wrong_endpoint(self.config.provider, other, self.config.url_of(conn.index))
                self._fail(ProviderRefused(message, provider=self.config.provider, error_code="wrong_endpoint"))

    def _notice(self, conn: Connection, output: Notice) -> None:
        # Codes and texts are the provider's: bounded in number, escaped, and not one log line each.
        code = bounded_label(self._stats.notices, log_safe(output.code, 64))
        self._stats.notices[code] += 1
        held = self._notice_gate.allow(code)
        if held is not None:
            log.warning(
                "connection %d: %s reports %s: %s%s",
                conn.index,
                self.config.provider,
                code,
                log_safe(output.message),
                f" ({held} more of these in the last minute, not logged)" if held else "",
            )

    def _reject(self, output: Rejected) -> None:
        channel = output.error.channel
        if not self._registry.reject(channel):
            # One report per channel, however many connections were refused; and only for a
            # channel we asked for (a server may name any others, as often as it likes).
            log.debug("ignored a rejection of %r: not subscribed", channel)
            return
        self._stats.rejected[channel] += 1
        log.warning("%s", output.error)
        self._delivery.fail(output.error)


def _with_endpoint_hint(refusal: PumpsyncError) -> PumpsyncError:
    """A refusal by close code, with what the code means to other providers where that differs
    (OpenPump's 4001 is a plan refusal, Anaxer's a bad key: the URL may be the other's)."""
    if not isinstance(refusal, ProviderRefused):
        return refusal
    hint = close_code_elsewhere(refusal.provider, refusal.close_code)
    if not hint:
        return refusal
    return type(refusal)(
        f"{refusal}{hint}", provider=refusal.provider, close_code=refusal.close_code, error_code=refusal.error_code
    )


def _alive(worker: Connection | GapRecovery) -> bool:
    return worker.alive


def _status_request(dialect: Dialect) -> list[Outgoing]:
    frame = dialect.status_request()
    if frame is None:
        raise PumpsyncError(f"{dialect.provider} has no status request")
    return [frame]


__all__ = ["Engine", "FailureListener"]
