"""Gap recovery over REST (Anaxer): fetch what the stream missed while we were away.

Runs on its own thread so that the connections keep reading (and answering heartbeats) while
pages download. A job fetches ``since=<last slot seen>`` (inclusive: several events share a
slot; de-duplication removes the ones we had), follows ``next`` until the end, and hands the
events to the delivery, which puts them before the live events that arrived meanwhile.
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
from urllib.parse import urljoin

import requests

from pumpsync._backoff import retry_after
from pumpsync._delivery import Delivery
from pumpsync._secrets import redact
from pumpsync._stats import ClientStats
from pumpsync._threads import join_thread
from pumpsync.config import ClientConfig, rest_base
from pumpsync.events import Event
from pumpsync.providers.anaxer import normalize
from pumpsync.providers.base import Subscription

log = logging.getLogger("pumpsync.backfill")

# Anaxer's list endpoints, per channel (prices have none).
ENDPOINTS = {"creations": "/v1/creations", "graduations": "/v1/graduations", "trades": "/v1/trades"}
PAGE_LIMIT = 1000
_ATTEMPTS = 5  # per page, for 429 / 5xx / network errors
_REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read
_MAX_PAGES = 10_000  # a server that keeps answering "next" forever must not keep us forever


class BackfillError(Exception):
    pass


@dataclass(frozen=True)
class Job:
    since: Mapping[str, tuple[Mapping[str, Any], int]]  # channel -> (filters, first slot)
    held: bool  # live events are held until this job ends


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(query_value(v) for v in value)
    return str(value)


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
        self.base = rest_base(config)
        self._delivery = delivery
        self._stats = stats
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._retries: list[tuple[float, Job]] = []  # (when, job), only touched by the backfill thread
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {config.api_key.reveal()}"
        self._http.headers["Accept"] = "application/json"
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE / HTTP(S)_PROXY from the
        # environment override a session's settings, but not a request's.
        self._request_options: dict[str, Any] = {"timeout": _REQUEST_TIMEOUT}
        if config.proxy:
            self._request_options["proxies"] = {"http": config.proxy, "https": config.proxy}
        if config.ca_bundle:
            self._request_options["verify"] = config.ca_bundle
        self._thread = threading.Thread(target=self._run, name="pumpsync-backfill", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._jobs.put(None)

    def join(self, timeout: float) -> bool:
        ended = join_thread(self._thread, timeout)
        self._http.close()
        return ended

    @staticmethod
    def recoverable(channel: str) -> bool:
        return channel in ENDPOINTS

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
        """Every event of ``channel`` from slot ``since`` on, following pages."""
        first: dict[str, str] = {k: query_value(v) for k, v in filters.items()}
        first.update(since=str(since), limit=str(PAGE_LIMIT))
        params: dict[str, str] | None = first
        url = self.base + ENDPOINTS[channel]
        events: list[Event] = []
        for _ in range(_MAX_PAGES):
            body = self._get(url, params)
            items, cursor = _page(body)
            now = int(time.time() * 1000)
            for item in items:
                event = normalize(item, channel, now, 0, backfill=True) if isinstance(item, dict) else None
                if event is not None:
                    events.append(event)
            if not cursor:
                return events
            if cursor.startswith(("http://", "https://", "/")):
                url, params = urljoin(self.base + "/", cursor), None
            else:
                params = dict(params or {}, cursor=cursor)
        raise BackfillError(f"more than {_MAX_PAGES} pages")

    def _get(self, url: str, params: dict[str, str] | None) -> Any:
        delay = self.config.backoff_initial or 0.5
        for attempt in range(_ATTEMPTS):
            if self._stop.is_set():
                raise BackfillError("client closed")
            wait = min(delay * (2**attempt), self.config.backoff_max)  # our own backoff is capped...
            try:
                response = self._http.get(url, params=params, **self._request_options)
            except requests.RequestException as exc:
                problem = redact(f"{type(exc).__name__}: {exc}", self.config.api_key)
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise BackfillError("the response is not JSON") from None
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429 or response.status_code >= 500:
                    wait = retry_after(response.headers.get("Retry-After"), wait)
                else:
                    raise BackfillError(problem)
            log.debug("backfill GET %s: %s (attempt %d)", redact(url), problem, attempt + 1)
            if self._stop.wait(wait):  # ...the server's Retry-After is not (beyond retry_after()'s own cap)
                raise BackfillError("client closed")
        raise BackfillError(f"{problem} after {_ATTEMPTS} attempts")


def _page(body: Any) -> tuple[list[Any], str | None]:
    """``{data, next, window}`` or a bare list."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        cursor = body.get("next")
        return body["data"], cursor if isinstance(cursor, str) and cursor else None
    raise BackfillError("the response is neither a page object nor a list")
