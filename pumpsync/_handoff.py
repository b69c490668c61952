"""The client's queue: ``queue.SimpleQueue``'s methods, with a wake-up that does not hold the GIL.

Why not ``queue.SimpleQueue`` itself: its ``put()`` wakes a waiting consumer while the
producing thread still holds the GIL. At a few hundred events a second the woken consumer
often preempts the producer on the same CPU, finds the GIL taken, and the two pass it back and
forth before the consumer runs: 5-7 context switches per event where 3 would do (the kernel
takes about half of the client's CPU at realistic rates). Here the wake-up is a byte sent on
a socket pair, a system call made without the GIL, so the consumer wakes to a free GIL. And
the producer can queue a whole read's events with :meth:`HandOffQueue.append` and wake the
consumer once, with :meth:`HandOffQueue.wake`.

Costs: two file descriptors per queue, closed when the queue is garbage-collected (not
before: a consumer may still be draining it after the client has closed).

Protocol (no lost wake-ups): a consumer registers as a sleeper, then checks for items, then
waits for a wake-up byte; a producer appends, then sends a byte if anyone sleeps and no byte
is already on its way. Whichever of the two comes second sees the other's step.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class HandOffQueue(Generic[T]):
    """Unbounded FIFO for any number of producer and consumer threads (like ``queue.SimpleQueue``)."""

    def __init__(self, substitute: Callable[[T], T] | None = None) -> None:
        self._items: deque[T] = deque()
        # Applied to each item as it is taken (several sources: a preferred source's copy replaces a queued one).
        self._substitute = substitute
        self._lock = threading.Lock()  # guards _sleepers between consumers
        self._sleepers = 0  # consumers waiting (or about to) for a wake-up byte
        self._signaled = False  # a wake-up byte is on its way: producers need not send another
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)  # a full buffer means wake-ups are pending already
        # Not at exit: a daemon thread may still be waiting on them then; the OS closes them.
        weakref.finalize(self, _close, self._wake_r, self._wake_w).atexit = False

    # ------------------------------------------------------------------ producers
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``item`` and wake a waiting consumer (``block`` and ``timeout``: as SimpleQueue, ignored)."""
        self._items.append(item)
        self.wake()

    def put_nowait(self, item: T) -> None:
        self.put(item)

    def append(self, item: T) -> None:
        """Queue ``item`` without waking anyone: call :meth:`wake` after the batch."""
        self._items.append(item)

    def extend(self, items: Iterable[T]) -> None:
        """Queue ``items`` in order without waking anyone: call :meth:`wake` after the batch."""
        self._items.extend(items)

    def wake(self) -> None:
        """Wake a waiting consumer, if there is one (after :meth:`append`)."""
        if self._sleepers and not self._signaled and self._items:
            self._signal()

    def _signal(self) -> None:
        self._signaled = True
        try:
            self._wake_w.send(b"\0")  # without the GIL: the consumer wakes to a free one
        except OSError:  # buffer full (a byte is pending anyway), or closed at interpreter exit
            pass

    # ------------------------------------------------------------------ consumers
    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the next item; ``queue.Empty`` if none came (``block=False``: at once)."""
        items = self._items
        try:
            item = items.popleft()
        except IndexError:
            if not block:
                raise queue.Empty from None
        else:
            return item if self._substitute is None else self._substitute(item)
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._sleepers += 1
            try:
                if not items:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise queue.Empty
                    self._await_wake(left)
            finally:
                with self._lock:
                    self._sleepers -= 1
            try:
                item = items.popleft()
            except IndexError:  # a spurious wake-up, or another consumer was quicker
                continue
            if items and self._sleepers and not self._signaled:
                self._signal()  # more to take and another consumer waiting: pass it on
            return item if self._substitute is None else self._substitute(item)

    def get_nowait(self) -> T:
        return self.get(block=False)

    def _await_wake(self, timeout: float | None) -> None:
        if _wait_readable(self._wake_r, timeout):
            try:
                self._wake_r.recv(4096)  # every pending byte: one wake-up is enough to re-check
            except OSError:  # another consumer drained them first
                pass
            # After draining, so that a byte sent meanwhile is seen as pending by no one and a
            # producer that found _signaled still True appended before our re-check.
            self._signaled = False

    # ------------------------------------------------------------------ state
    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


def _wait_readable(sock: socket.socket, timeout: float | None) -> bool:
    if hasattr(select, "poll"):  # no FD_SETSIZE limit; a poll object per call is safe across threads
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(None if timeout is None else timeout * 1000.0))
    return bool(select.select([sock], [], [], timeout)[0])


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        sock.close()
