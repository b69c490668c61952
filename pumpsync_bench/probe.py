"""Measuring inside a client's process: events, wall and CPU time, memory, threads, latency.

The consumer calls a :class:`Recorder` once per event; the measured window runs from the first
event to the last, so process start-up and the connection handshake are not counted.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

PERCENTILES = (("p50", 0.50), ("p99", 0.99), ("p99_9", 0.999), ("max", 1.0))


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_and_switches() -> tuple[float, int, int]:
    # context switches per event tell a thread hand-off per event from a batched one; the
    # involuntary ones, preemption (by another thread of ours or by the rest of the machine)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_nvcsw + usage.ru_nivcsw, usage.ru_nivcsw


def rss_bytes() -> int:
    """Resident memory now (Linux); elsewhere the peak, which is what getrusage offers."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def thread_count() -> int:
    """OS threads of this process (native ones too), falling back to Python's count.

    Not counted: the metrics server's per-request threads (``ThreadingHTTPServer`` starts one
    per scrape and it ends with the response), so that a scrape in flight is not a "leak".
    """
    transient = sum(1 for t in threading.enumerate() if t.name.endswith("(process_request_thread)"))
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1]) - transient
    except (OSError, ValueError):
        pass
    return threading.active_count() - transient


def percentiles(samples_ns: array[int]) -> dict[str, float]:
    """Nearest-rank percentiles in microseconds."""
    if not samples_ns:
        return {}
    ordered = sorted(samples_ns)
    last = len(ordered) - 1
    return {name: ordered[min(last, int(q * len(ordered)))] / 1000.0 for name, q in PERCENTILES}


class _Mark:
    __slots__ = ("cpu", "preempted", "rss", "switches", "threads", "wall")

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu, self.switches, self.preempted = _cpu_and_switches()
        self.rss = rss_bytes()
        self.threads = thread_count()


class Recorder:
    """Counts events up to ``count``; ``recorder(stamp_ns)`` returns True at the last one.

    ``latency``: keep ``time.time_ns() - stamp`` per event (an ``array``, so that the samples
    themselves barely move RSS). ``warm_at``: also mark memory at that event (the soak's
    steady state, once the client's bounded buffers have filled).
    """

    def __init__(self, count: int, latency: bool = False, warm_at: int | None = None) -> None:
        self.count = count
        self.received = 0
        self.samples: array[int] | None = array("q") if latency else None
        self._warm_at = warm_at
        self._first: _Mark | None = None
        self._warm: _Mark | None = None
        self._last: _Mark | None = None

    def __call__(self, stamp_ns: int) -> bool:
        if self.samples is not None:
            self.samples.append(time.time_ns() - stamp_ns)
        n = self.received = self.received + 1
        if n == 1:
            self._first = _Mark()
        if n == self._warm_at:
            self._warm = _Mark()
        if n >= self.count:
            self._last = _Mark()
            return True
        return False

    def many(self, n: int) -> bool:
        """``n`` events at once, no latency (the capacity client counts frames by their bytes)."""
        if n <= 0:
            return False
        if self.received == 0:
            self._first = _Mark()
        self.received = min(self.count, self.received + n)
        if self.received >= self.count:
            self._last = _Mark()
            return True
        return False

    def result(self) -> dict[str, Any]:
        first = self._first
        last = self._last or (_Mark() if first is not None else None)
        out: dict[str, Any] = {"received": self.received, "expected": self.count}
        if first is None or last is None:
            return out
        wall = last.wall - first.wall
        cpu = last.cpu - first.cpu
        intervals = max(1, self.received - 1)  # the window starts at the first event
        out.update(
            wall_s=wall,
            cpu_s=cpu,
            events_per_s=intervals / wall if wall > 0 else None,
            cpu_us_per_event=cpu / intervals * 1e6,
            cpu_pct=100.0 * cpu / wall if wall > 0 else None,
            switches_per_event=(last.switches - first.switches) / intervals,
            involuntary_switches_per_event=(last.preempted - first.preempted) / intervals,
            rss_start=first.rss,
            rss_end=last.rss,
            threads_start=first.threads,
            threads_end=last.threads,
        )
        if self._warm is not None:
            out["rss_warm"] = self._warm.rss
        if self.samples is not None:
            out["latency_us"] = percentiles(self.samples)
        return out


class Watchdog:
    """Calls ``abort`` when no event came for ``idle`` seconds (``first`` before the first one),
    or when the orchestrator that started this process has gone.

    Keeps every run bounded in time whatever the client does.
    """

    def __init__(self, recorder: Recorder, abort: Callable[[], None], first: float, idle: float) -> None:
        self.fired = False
        self._recorder = recorder
        self._abort = abort
        self._first = first
        self._idle = idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        seen, since = -1, time.monotonic()
        parent = os.getppid()
        while not self._stop.wait(0.25):
            now, received = time.monotonic(), self._recorder.received
            if os.getppid() != parent:  # orphaned: nobody will read the result
                self.fired = True
                self._abort()
                return
            if received != seen:
                seen, since = received, now
                continue
            if now - since > (self._idle if received else self._first):
                self.fired = True
                self._abort()
                return
