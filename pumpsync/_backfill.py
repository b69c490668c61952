"""Gap recovery: fetch what the stream missed while we were away, from the provider's history source.

Runs on its own thread so that the connections keep reading (and answering heartbeats) while
pages download. A job fetches ``since=<last slot seen>`` (inclusive: several events share a
slot; de-duplication removes the ones we had) and hands the events to the delivery, which puts
them before the live events that arrived meanwhile.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pumpsync._delivery import Delivery
from pumpsync._stats import ClientStats
from pumpsync._threads import join_thread
from pumpsync.config import ClientConfig
from pumpsync.events import Event
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import HistoryError, HistorySource, Position

log = logging.getLogger("pumpsync.backfill")

BackfillError = HistoryError  # the old name


@dataclass(frozen=True)
class Job:
    since: Mapping[str, tuple[Mapping[str, Any], int]]  # channel -> (filters, first slot)
    held: bool  # live events are held until this job ends


class Backfiller:
    def __init__(
        self,
        config: ClientConfig,
        delivery: Delivery,
        stats: ClientStats,
        subscriptions: Callable[[], list[Subscription]] | None = None,
    ) -> None:
        self.config = config
        # The live registry (runtime subscribe/unsubscribe), not the channels the client started with.
        self._subscriptions = subscriptions or (lambda: list(config.channels))
        build = config.spec.history
        if build is None:
            raise ValueError(f"{config.provider} has no history source")
        self._history: HistorySource = build(config)
        self._delivery = delivery
        self._stats = stats
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._retries: list[tuple[float, Job]] = []  # (when, job), only touched by the backfill thread
        self._thread = threading.Thread(target=self._run, name="pumpsync-backfill", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._jobs.put(None)

    def join(self, timeout: float) -> bool:
        ended = join_thread(self._thread, timeout)
        self._history.close()
        return ended

    def recoverable(self, channel: str) -> bool:
        return self._history.recoverable(channel)

    def request(self, since: Mapping[str, tuple[Mapping[str, Any], int]], held: bool) -> None:
        """Fetch each channel's history from its slot on. With ``held``, the caller has called
        ``delivery.hold()`` and this job's end releases it."""
        self._jobs.put(Job(dict(since), held))

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for retry in [r for r in self._retries if r[0] <= now]:
                self._retries.remove(retry)
                self._do(retry[1])
            try:
                next_retry = min((due for due, _ in self._retries), default=now + 1.0)
                job = self._jobs.get(timeout=max(0.01, min(1.0, next_retry - now)))
            except queue.Empty:
                self._recover_overflow()
                continue
            if job is None:
                break
            self._do(job)

    def _recover_overflow(self) -> None:
        """Events dropped on overflow are fetched again once the consumer has caught up."""
        if not self._delivery.dropped_from or self._delivery.queue.qsize() > self._delivery.capacity // 2:
            return
        filters = {sub.channel: sub.filters for sub in self._subscriptions()}
        gaps = self._delivery.take_overflow_gaps()
        since = {ch: (filters[ch], slot) for ch, slot in gaps.items() if ch in filters and self.recoverable(ch)}
        if since:
            self._do(Job(since, held=False))

    def _do(self, job: Job) -> None:
        events: list[Event] = []
        failed: dict[str, tuple[Mapping[str, Any], int]] = {}
        try:
            for channel, (filters, since) in job.since.items():
                if not self.recoverable(channel):
                    continue
                self._stats.backfill_requests += 1
                try:
                    fetched = self.fetch(channel, filters, since)
                except BackfillError as exc:
                    if self._stop.is_set():
                        return  # closing: nothing to retry, nothing to report
                    self._stats.backfill_failures += 1
                    failed[channel] = (filters, since)
                    log.warning("backfill of %s since slot %d failed: %s; will retry", channel, since, exc)
                else:
                    events += fetched
        finally:
            new = self._delivery.release(events, held=job.held)
        if events:
            log.info("backfill: %d events, %d new", len(events), new)
        if failed:
            self._retry_later(Job(failed, held=False))

    def _retry_later(self, job: Job) -> None:
        # The live stream goes on meanwhile (the hold is released); the retry only adds what is missing.
        self._retries.append((time.monotonic() + self.config.backoff_max * random.uniform(0.5, 1.0), job))

    def fetch(self, channel: str, filters: Mapping[str, Any], since: int) -> list[Event]:
        """Every event of ``channel`` from slot ``since`` on."""
        events: list[Event] = []
        for page in self._history.fetch({channel: filters}, Position(since), self._stop):
            events += page
        return events
