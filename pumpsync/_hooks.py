"""Callbacks, the third way to consume a client (beside iterating it and reading its queue).

``Client(on_event=..., on_connect=..., on_disconnect=..., on_gap=...)``: one dispatcher thread
per client calls them, never a reader thread, so a slow callback cannot stall a socket.

- ``on_event(event)``: the dispatcher is then the client's consumer: it takes every event from
  ``client.queue`` (bounded, its overflow counted as ``dropped`` like any consumer's). Do not
  also iterate the client or read its queue.
- ``on_connect(ConnectInfo)``, ``on_disconnect(DisconnectInfo)``, ``on_gap(GapReport)``: the
  connection threads (and the gap recovery) only append a notice to a bounded list (``capacity``); a notice that does
  not fit is counted (``hooks.dropped``) and the reader goes on.

An exception in a callback is counted (``hooks.errors``, by hook) and logged, once per hook and
minute at most; the dispatcher and the client go on. Lock order: ``Hooks._cond`` is a leaf (held
only to append or take notices; no callback runs under it).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pumpsync._text import WarningGate
from pumpsync._threads import join_thread
from pumpsync.errors import ClientClosed, ConfigurationError, PumpsyncError

if TYPE_CHECKING:
    from pumpsync.events import Event

# The consumer's ``get(timeout)`` (the client's; raises ClientClosed once it is closed or gone).
Getter = Callable[[float], "Event"]

log = logging.getLogger("pumpsync")

HOOK_NAMES = ("on_event", "on_connect", "on_disconnect", "on_gap")
CAPACITY = 10_000  # lifecycle notices waiting for the dispatcher (they are rare: a reconnect storm is bounded)
_POLL = 0.1  # seconds the dispatcher waits on the event queue before it looks at the notices again


@dataclass(frozen=True)
class ConnectInfo:
    """A connection opened (``on_connect``): its ``source`` (provider, or the Source's name),
    its index, the URL as it may be shown (scheme, host, port), and whether it is a reconnect."""

    source: str
    connection: int
    url: str
    reconnect: bool


@dataclass(frozen=True)
class DisconnectInfo:
    """A connection ended (``on_disconnect``): ``reason`` (a bounded label, e.g. ``closed``,
    ``stale``, ``http_503``), the close ``code`` if any, and a ``detail`` line (keys redacted)."""

    source: str
    connection: int
    reason: str
    code: int | None
    detail: str


class Hooks:
    """The callbacks of one client and the thread that runs them (see the module docs)."""

    def __init__(self, callbacks: dict[str, Callable[[Any], Any] | None], capacity: int = CAPACITY) -> None:
        self._callbacks = {name: cb for name, cb in callbacks.items() if cb is not None}
        for name, callback in self._callbacks.items():
            if not callable(callback):
                raise ConfigurationError(name, f"{callback!r} is not callable")
        self._capacity = capacity
        self._cond = threading.Condition(threading.Lock())
        self._notices: deque[tuple[str, Any]] = deque()
        self._stop = threading.Event()
        self._gate = WarningGate()
        self._thread: threading.Thread | None = None
        self._down_since: dict[str, float] = {}  # per source: when its last open connection ended
        self.dropped = 0  # notices that found the list full
        # Every key from the start: snapshot() copies them from another thread.
        self.errors: Counter[str] = Counter(dict.fromkeys(self._callbacks, 0))  # exceptions raised by each hook
        self.calls: Counter[str] = Counter(dict.fromkeys(self._callbacks, 0))

    @staticmethod
    def pop(options: dict[str, Any]) -> Hooks | None:
        """Take the hook options out of a client's keyword options; a Hooks if any was given."""
        given = {name: options.pop(name, None) for name in HOOK_NAMES}
        return Hooks(given) if any(cb is not None for cb in given.values()) else None

    def wants(self, name: str) -> bool:
        return name in self._callbacks

    # ------------------------------------------------------------------ from any thread
    def notify(self, name: str, info: Any) -> None:
        """Queue a lifecycle notice for the dispatcher; never blocks, never raises."""
        if name not in self._callbacks:
            return
        with self._cond:
            if len(self._notices) >= self._capacity:
                self.dropped += 1
                return
            self._notices.append((name, info))
            self._cond.notify()

    def went_down(self, source: str, now: float) -> None:
        """The source's last open connection has ended: a gap may begin here."""
        with self._cond:
            self._down_since.setdefault(source, now)

    def came_back(self, source: str) -> float | None:
        """A connection of the source opened: when its outage began (None: there was none)."""
        with self._cond:
            return self._down_since.pop(source, None)

    # ------------------------------------------------------------------ owner
    def start(self, get: Getter) -> None:
        """Start the dispatcher; with ``on_event`` it consumes the client's events through ``get``
        (held by the thread only: the reference ends with it, so a closed client is freed at once)."""
        self._thread = threading.Thread(target=self._run, args=(get,), name="pumpsync-hooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """End the dispatcher (the notices still queued are run first); True if it has ended."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is threading.current_thread():
            return True  # close() from a callback: the dispatcher ends when the callback returns
        return True if self._thread is None else join_thread(self._thread, timeout)

    def snapshot(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "errors": dict(self.errors), "dropped": self.dropped}

    # ------------------------------------------------------------------ the dispatcher thread
    def _run(self, get: Getter) -> None:
        reading = "on_event" in self._callbacks
        while not self._stop.is_set():
            self._run_notices()
            if not reading:
                with self._cond:
                    self._cond.wait_for(lambda: bool(self._notices) or self._stop.is_set(), timeout=1.0)
                continue
            try:
                event = get(_POLL)
            except queue.Empty:
                continue
            except ClientClosed:  # closed, or a replay's end: no more events
                reading = False
                continue
            except PumpsyncError as exc:
                # A refused channel, a failed source: the client has logged it and goes on. A fatal
                # error ends the events (it stays as client.error for the user's code to see).
                reading = not exc.fatal
                continue
            self._call("on_event", event)
        self._run_notices()

    def _run_notices(self) -> None:
        while True:
            with self._cond:
                if not self._notices:
                    return
                name, info = self._notices.popleft()
            self._call(name, info)

    def _call(self, name: str, argument: Event | Any) -> None:
        callback = self._callbacks.get(name)
        if callback is None:
            return
        self.calls[name] += 1
        try:
            callback(argument)
        except Exception as exc:  # the user's code: counted and logged, never the end of the client
            self.errors[name] += 1
            held = self._gate.allow(name)
            if held is not None:
                more = f" ({held} more in the last minute, not logged)" if held else ""
                log.warning("%s raised %s: %s%s", name, type(exc).__name__, exc, more, exc_info=True)


__all__ = ["CAPACITY", "HOOK_NAMES", "ConnectInfo", "DisconnectInfo", "Hooks"]
