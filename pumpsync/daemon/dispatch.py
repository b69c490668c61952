"""The one thread that takes events off the client's queue and offers them to every sink.

Offering never blocks (each sink has its own bounded buffer), so this thread keeps pace with
the connections however slow a sink is.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from pumpsync._delivery import Item
from pumpsync._handoff import HandOffQueue
from pumpsync._threads import join_thread
from pumpsync.daemon.sinks import Sink
from pumpsync.errors import ClientClosed, EndOfStream, PumpsyncError
from pumpsync.events import Event

log = logging.getLogger("pumpsync.daemon")

_TICK = 0.25  # seconds; how often the thread proves it is alive while the stream is quiet


class Dispatcher:
    def __init__(
        self,
        source: HandOffQueue[Item],
        sinks: Sequence[Sink],
        on_fatal: Callable[[PumpsyncError], None],
        on_death: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._source = source
        self._on_death = on_death  # told what ended the thread unexpectedly (None: it re-raises)
        self._sinks = list(sinks)
        self._on_fatal = on_fatal
        self._stop = threading.Event()
        self.dispatched = 0
        self.last_tick = time.monotonic()  # read by the runner's watchdog
        self.closed = threading.Event()  # the client's ClientClosed marker was reached: all dispatched
        self._thread = threading.Thread(target=self._run, name="pumpsync-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop now, even with events left (the drain deadline passed)."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        return join_thread(self._thread, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def ended_unexpectedly(self) -> bool:
        """The thread has ended though nobody stopped it and the client's stream has not ended."""
        stopped = self.closed.is_set() or self._stop.is_set()
        return self._thread.ident is not None and not self.alive and not stopped

    def _run(self) -> None:
        try:
            self._dispatch()
        except BaseException as exc:
            if self._on_death is None:
                raise
            self._on_death(exc)

    def _dispatch(self) -> None:
        get = self._source.get
        sinks = self._sinks
        while not self._stop.is_set():
            try:
                item = get(timeout=_TICK)
            except queue.Empty:
                self.last_tick = time.monotonic()
                continue
            self.last_tick = time.monotonic()
            if type(item) is Event:
                for sink in sinks:
                    sink.offer(item)
                self.dispatched += 1
            elif isinstance(item, ClientClosed):
                self.closed.set()
                if isinstance(item, EndOfStream):  # a replay's end: the daemon's job is done (exit 0)
                    self._on_fatal(item)
                return
            elif isinstance(item, PumpsyncError) and item.fatal:
                self._on_fatal(item)
            else:
                log.debug("not dispatched: %s", item)  # a rejected channel; the client logged it
        left = self._source.qsize()
        if left:
            log.warning("shutdown deadline reached: %d queued events were not handed to the sinks", left)
