"""The daemon's own threads (the dispatcher, each sink's writer, the metrics server): none dies unnoticed.

Each thread reports its unexpected end here (what it raised); the runner's loop also notices a
thread that ended without a word. Either way the end is counted
(``pumpsync_daemon_thread_failures_total{thread}``, exported at 0), logged once at ERROR with
its traceback, makes ``/readyz`` answer 503 and stops the daemon with exit status 1, so that
its supervisor (systemd's ``Restart=on-failure``) starts a sound one, which resumes from the
sinks' positions. Restarting the thread in place would keep a sink whose state a bug left
unknown (a half-written file, an open transaction) writing.

The client's own threads are counted by the client (``pumpsync_thread_failures_total``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, Metric

from pumpsync._secrets import redact

log = logging.getLogger("pumpsync.daemon")

DAEMON_THREAD_KINDS = ("dispatcher", "sink", "metrics")


class ThreadWatch:
    """Where the daemon's threads report an unexpected end; also a Prometheus collector."""

    def __init__(self, on_failure: Callable[[str], None]) -> None:
        self._on_failure = on_failure  # the runner: stop, exit 1
        self._lock = threading.Lock()  # guards the two below; nothing is called while holding it
        self._counts: Counter[str] = Counter()
        self._dead: dict[str, str] = {}  # thread name -> what ended it; replaced, never mutated

    def reporter(self, kind: str, name: str) -> Callable[[BaseException | None], None]:
        """The callback a thread of ``kind`` calls with what ended it."""
        return lambda error: self.failed(kind, name, error)

    def failed(self, kind: str, name: str, error: BaseException | None) -> None:
        """Thread ``name`` ended unexpectedly (``error``: what it raised; None when it just returned)."""
        what = "it returned" if error is None else f"{type(error).__name__}: {_text(error)}"
        with self._lock:
            if name in self._dead:  # reported by the thread and noticed by the loop: once
                return
            self._dead = {**self._dead, name: what}
            self._counts[kind] += 1
        exc_info = (type(error), error, error.__traceback__) if error is not None else None
        log.error("the %s thread ended unexpectedly (%s); stopping", name, what, exc_info=exc_info)
        self._on_failure(f"the {name} thread ended unexpectedly ({what})")

    def problem(self) -> str | None:
        """What ``/readyz`` says while a thread is dead; None when all are alive."""
        dead = self._dead
        return "; ".join(f"thread {name} ended ({what})" for name, what in dead.items()) or None

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {kind: self._counts[kind] for kind in DAEMON_THREAD_KINDS}

    # ------------------------------------------------------------------ prometheus_client collector
    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "pumpsync_daemon_thread_failures",
            "Unexpected ends of the daemon's own threads (each makes it not ready and stops it, exit 1), by kind.",
            labels=["thread"],
        )
        for kind, n in self.counts().items():
            family.add_metric([kind], n)
        yield family


def _text(error: BaseException) -> str:
    try:
        return redact(str(error))[:200]
    except Exception:  # an exception whose __str__ itself fails
        return "(its message could not be shown)"
