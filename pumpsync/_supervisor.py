"""The supervisor thread: heartbeats, stale sockets, backoff and reconnect scheduling.

All timing lives here. Each connection slot has its own backoff; a slot that has been open
for ``healthy_after`` seconds resets its backoff and its count of consecutive failures.
Staleness is armed the moment a socket opens: a socket that never delivers a first frame
is as stale as one that stopped.

The supervisor is also the one judge of health (monotonic clock): a connection is healthy while
it is open and something arrived within ``stale_timeout``. It writes its verdict into the
connection's stats (``healthy``, ``checked_at``, ``stale_since``); ``Client.ready``, ``/readyz``,
sd_notify and the metrics read that verdict and never re-derive it.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable

from pumpsync._backoff import Backoff
from pumpsync._connection import Connection, Outcome
from pumpsync._logsource import label_threads
from pumpsync._stats import ConnectionStats
from pumpsync._threads import join_thread
from pumpsync.config import ClientConfig
from pumpsync.errors import ConnectionLost, PumpsyncError
from pumpsync.providers.base import Dialect

log = logging.getLogger("pumpsync.supervisor")

_MAX_SLEEP = 1.0
_STAGGER = 0.1  # seconds between the first attempts of redundant connections


class _Slot:
    __slots__ = ("backoff", "failures", "healthy", "retry_at")

    def __init__(self, backoff: Backoff, retry_at: float) -> None:
        self.backoff = backoff
        self.failures = 0
        self.healthy = False
        self.retry_at: float | None = retry_at


class Supervisor:
    """Lock order (docs/architecture.md): ``_cond`` is a leaf. The loop decides under it and acts
    (pings, aborts, hello timeouts, failures: anything that sends or calls out) after releasing it.

    ``watched``: the other threads of the source, by kind, with a liveness test; one that ends
    while it runs is reported to ``thread_failed`` (which counts it and fails the source).
    The supervisor's own unexpected end is reported there too. ``fail`` and ``thread_failed`` are
    the owner's callbacks (weak: ``pumpsync._threads.upward``), called with no lock held."""

    def __init__(
        self,
        config: ClientConfig,
        connections: list[Connection],
        fail: Callable[[PumpsyncError], None],
        watched: list[tuple[str, Callable[[], bool]]] | None = None,
        thread_failed: Callable[[str, str], None] | None = None,
        label: str = "",
    ) -> None:
        self.config = config
        self.connections = connections
        self._fail = fail
        self._watched = watched or []
        self._thread_failed = thread_failed or _ignore_thread
        self._cond = threading.Condition()
        self._woken = False  # a wake() came while the loop was acting (not waiting)
        self._stopping = False
        self._slots: list[_Slot] = []
        self._first_deadline: float | None = None  # until a first connection opens
        self._label = label or config.provider
        self._thread = threading.Thread(name="pumpsync-supervisor", daemon=True)  # replaced by start()

    def start(self, keepalive: object = None) -> None:
        """Start the thread. ``keepalive``: what the thread keeps alive while it runs (the client: a
        running client whose user dropped every reference goes on, as a thread would; the reference
        goes with the thread, so a closed client is freed at once)."""
        self._thread = threading.Thread(target=self._run, args=(keepalive,), name="pumpsync-supervisor", daemon=True)
        label_threads(self._label, self._thread)  # its log lines name the source
        now = time.monotonic()
        if math.isfinite(self.config.first_connect_timeout):
            self._first_deadline = now + self.config.first_connect_timeout
        self._slots = [
            _Slot(Backoff(self.config.backoff_initial, self.config.backoff_max), now + i * _STAGGER)
            for i in range(len(self.connections))
        ]
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._woken = True
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        return join_thread(self._thread, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def ready(self) -> bool:
        """Running, and at least one connection is healthy (the verdicts of :meth:`_tend`)."""
        return not self._stopping and any(conn.stats.healthy for conn in self.connections)

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ reports from connection threads
    def session_ended(self, conn: Connection, outcome: Outcome) -> None:
        """Schedule the next attempt of ``conn`` (not called for fatal refusals)."""
        failure = self._schedule(conn, outcome)
        if failure is not None:  # outside the lock: failing calls back into the client
            self._fail(failure)

    def _schedule(self, conn: Connection, outcome: Outcome) -> PumpsyncError | None:
        with self._cond:
            if self._stopping:
                return None
            _judge(conn.stats, False, time.monotonic())
            slot = self._slots[conn.index]
            if not slot.healthy:
                slot.failures += 1
            slot.healthy = False
            limit = self.config.max_retries
            if limit is not None and slot.failures > limit:
                self._stopping = True
                last = outcome.detail or outcome.reason
                return ConnectionLost(f"gave up after {limit} reconnection attempts (last: {last})")
            floor = max(self.config.limited_backoff if outcome.rate_limited else 0.0, outcome.retry_after or 0.0)
            delay = slot.backoff.delay(floor)
            slot.retry_at = time.monotonic() + delay
            conn.stats.next_attempt_at = time.time() + delay
            conn.stats.last_error = outcome.detail or outcome.reason
            conn.stats.set_state("backoff")
            log.warning(
                "connection %d: %s%s; reconnecting in %.2f s",
                conn.index,
                outcome.reason,
                f" ({outcome.detail})" if outcome.detail else "",
                delay,
            )
            self._woken = True
            self._cond.notify_all()
        return None

    # ------------------------------------------------------------------ the loop
    def _run(self, keepalive: object) -> None:
        try:
            self._loop()
        except BaseException as exc:  # a bug of ours: never a silent end (the client fails loudly)
            log.critical("the supervisor thread failed", exc_info=True)
            with self._cond:
                self._stopping = True
            self._thread_failed("supervisor", repr(exc))
        finally:
            now = time.monotonic()
            for conn in self.connections:  # a stopped client has no healthy connection
                _judge(conn.stats, False, now)

    def _loop(self) -> None:
        while True:
            actions: list[Callable[[], object]] = []
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                failure = self._never_connected(now) if self._first_deadline is not None else None
                if failure is not None:
                    actions.append(functools.partial(self._fail, failure))
                wake = now + _MAX_SLEEP
                for conn, slot in zip(self.connections, self._slots, strict=True):
                    wake = min(wake, self._tend(conn, slot, now, actions))
                self._woken = False
            for action in actions:  # outside the lock: these send, or call back into the client
                action()
            if failure is None:
                self._check_threads()
            with self._cond:
                if not self._woken and not self._stopping:
                    self._cond.wait(max(0.001, wake - time.monotonic()))

    def _check_threads(self) -> None:
        """Report a watched thread that ended while the client runs (the report fails the client)."""
        for kind, alive in self._watched:
            if not alive() and not self._stopping:
                log.critical("a %s thread ended unexpectedly", kind)
                self._thread_failed(kind, "the thread ended")
                return

    def _never_connected(self, now: float) -> PumpsyncError | None:
        """Past the first-connection deadline with no connection ever open: the error to fail with.
        Retries stay unlimited once one has opened: then the server exists, and an outage is worth waiting out."""
        assert self._first_deadline is not None
        if any(conn.sessions for conn in self.connections):
            self._first_deadline = None
            return None
        if now < self._first_deadline:
            return None
        self._stopping = True
        attempts = sum(conn.stats.attempts for conn in self.connections)
        last = next((c.stats.last_error for c in self.connections if c.stats.last_error), "no attempt finished")
        return ConnectionLost(
            f"could not connect within {self.config.first_connect_timeout:g} s "
            f"({attempts} attempts; last: {last}); check the URL (first_connect_timeout to wait longer)"
        )

    def _tend(self, conn: Connection, slot: _Slot, now: float, actions: list[Callable[[], object]]) -> float:
        """Decide what is due for one connection (``actions``, run after the lock is released);
        return when it next needs attention."""
        # why long: the checks are one precedence list (retry, not open, stale, no data, pong overdue,
        # ping due, hello overdue, healthy) read top to bottom under one lock hold; split up, the order
        # that makes the verdict right would be spread over helpers.
        if slot.retry_at is not None:
            _judge(conn.stats, False, now)
            if now < slot.retry_at:
                return slot.retry_at
            slot.retry_at = None
            conn.stats.next_attempt_at = None
            conn.go()
            return now + _MAX_SLEEP
        opened_at = conn.opened_at
        if opened_at is None or not conn.is_open:
            _judge(conn.stats, False, now)
            return now + _MAX_SLEEP
        config = self.config
        deadlines = [now + _MAX_SLEEP]
        # Staleness: nothing at all received for stale_timeout, counted from the socket's opening.
        stale_at = conn.last_rx + config.stale_timeout
        _judge(conn.stats, now < stale_at, now, stale=now >= stale_at)
        if now >= stale_at:
            log.warning("connection %d: nothing received for %.1f s; reconnecting", conn.index, now - conn.last_rx)
            actions.append(functools.partial(conn.abort, "stale"))
            return now + _MAX_SLEEP
        deadlines.append(stale_at)
        # Alive means data: the source's clock ticked on for stale_timeout with no data frame.
        tick = conn.last_tick
        if config.spec.data_clock and tick is not None and tick - conn.last_data >= config.stale_timeout:
            _judge(conn.stats, False, now)
            log.warning(
                "connection %d: the source's clock advanced for %.1f s with no data; the subscription is dead, "
                "reconnecting", conn.index, tick - conn.last_data,
            )  # fmt: skip
            actions.append(functools.partial(conn.abort, "no_data"))
            return now + _MAX_SLEEP
        ping_sent = conn.ping_sent_at
        if ping_sent is not None:
            if now >= ping_sent + config.pong_timeout:
                log.warning("connection %d: no pong within %.1f s; reconnecting", conn.index, config.pong_timeout)
                actions.append(functools.partial(conn.abort, "pong_timeout"))
                return now + _MAX_SLEEP
            deadlines.append(ping_sent + config.pong_timeout)
        elif now >= conn.next_ping_at:
            conn.next_ping_at = now + config.ping_interval
            actions.append(conn.send_ping)
        else:
            deadlines.append(conn.next_ping_at)
        dialect = conn.dialect
        if dialect is not None and dialect.awaiting_hello:
            # Never longer than half the stale timeout: a server that waits for our subscription
            # sends nothing meanwhile, and the stale verdict must not come first.
            hello_at = opened_at + min(config.hello_timeout, config.stale_timeout / 2)
            if now >= hello_at:
                actions.append(functools.partial(_hello_timeout, conn, dialect))
            else:
                deadlines.append(hello_at)
        if not slot.healthy:
            healthy_at = opened_at + config.healthy_after
            if now >= healthy_at:
                slot.healthy = True
                slot.failures = 0
                slot.backoff.reset()
            else:
                deadlines.append(healthy_at)
        return min(deadlines)


def _judge(stats: ConnectionStats, healthy: bool, now: float, stale: bool = False) -> None:
    """Record the supervisor's verdict on one connection (the only writer of these fields)."""
    stats.healthy = healthy
    stats.checked_at = now
    stats.stale_since = (stats.stale_since or now) if stale else None


def _hello_timeout(conn: Connection, dialect: Dialect) -> None:
    conn.with_dialect(lambda d: d.on_hello_timeout())
    if dialect.awaiting_hello:  # nothing to go on without it (a node that never answers logsSubscribe)
        log.warning("connection %d: no answer to the subscription; reconnecting", conn.index)
        conn.abort("hello_timeout")


def _ignore_thread(kind: str, detail: str) -> None:
    return None
