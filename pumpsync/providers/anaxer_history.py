"""Anaxer's history source: its REST lists (``/v1/trades`` ...), for gap recovery and ``since``.

Pages are fetched one at a time as the gap recovery asks for them (it asks when the consumer
has room), so that a gap of any size costs one page of memory. ``since`` is inclusive: several
events share a slot, and de-duplication removes the ones already delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from pumpsync._backoff import retry_after
from pumpsync._secrets import redact, safe_url
from pumpsync.events import Event
from pumpsync.providers._anaxer_records import normalize
from pumpsync.providers._history_http import read_json
from pumpsync.providers.spec import ClientConfig, HistoryError, Position, rest_base

log = logging.getLogger("pumpsync.backfill")

# Anaxer's list endpoints, per channel (prices have none).
ENDPOINTS = {"creations": "/v1/creations", "graduations": "/v1/graduations", "trades": "/v1/trades"}
PAGE_LIMIT = 1000
# What one page hands on at a time: a server that ignores ``limit`` and answers a million items
# in one page is cut into pieces of this size, so the release stays paced to the consumer.
CHUNK = PAGE_LIMIT
_ATTEMPTS = 5  # per page, for 429 / 5xx / network errors
_REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read
_MAX_PAGES = 100_000  # a server whose cursors never end (each new) must not keep us forever


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(query_value(v) for v in value)
    return str(value)


class AnaxerHistory:
    """A :class:`~pumpsync.providers.spec.HistorySource` over Anaxer's REST lists (per channel)."""

    stream_wide = False

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.base = rest_base(config)
        self._http = requests.Session()
        if config.api_key is not None:
            self._http.headers["Authorization"] = f"Bearer {config.api_key.reveal()}"
        self._http.headers["Accept"] = "application/json"
        # Per request, not on the session: requests lets REQUESTS_CA_BUNDLE / HTTP(S)_PROXY from the
        # environment override a session's settings, but not a request's.
        self._request_options: dict[str, Any] = {"timeout": _REQUEST_TIMEOUT}
        if config.proxy:
            self._request_options["proxies"] = {"http": config.proxy, "https": config.proxy}
        if config.ca_bundle:
            self._request_options["verify"] = config.ca_bundle
        self.unreadable = 0  # items of a shape nothing could be read from: counted lost, skipped

    def stats(self) -> dict[str, int]:
        return {"unreadable_item": self.unreadable}

    def lost(self) -> int:
        return self.unreadable

    def recoverable(self, channel: str) -> bool:
        return channel in ENDPOINTS

    def close(self) -> None:
        self._http.close()

    def fetch(
        self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: threading.Event
    ) -> Iterator[list[Event]]:
        """Each channel's events from ``since.slot`` on, a page (at most ``CHUNK`` events) at a time."""
        for channel, filters in channels.items():
            if self.recoverable(channel):
                yield from self._channel(channel, filters, since.slot, stop)

    def _channel(
        self, channel: str, filters: Mapping[str, Any], since: int, stop: threading.Event
    ) -> Iterator[list[Event]]:
        first: dict[str, str] = {k: query_value(v) for k, v in filters.items()}
        first.update(since=str(since), limit=str(PAGE_LIMIT))
        params: dict[str, str] | None = first
        url = self.base + ENDPOINTS[channel]
        cursors: set[str] = set()
        for _ in range(_MAX_PAGES):
            body = self._get(url, params, stop)
            items, cursor = _page(body)
            del body
            now = int(time.time() * 1000)
            for start in range(0, len(items), CHUNK):
                events = []
                for item in items[start : start + CHUNK]:
                    event = self._event(item, channel, now)
                    if event is not None:
                        events.append(event)
                yield events
            del items
            if not cursor:
                return
            if cursor in cursors:  # the same page again, forever: stop here, with what we have
                raise HistoryError(f"the {channel} list repeated a next cursor")
            cursors.add(cursor)
            if cursor.startswith(("http://", "https://", "/")):
                url, params = urljoin(self.base + "/", cursor), None
            else:
                params = dict(params or {}, cursor=cursor)
        raise HistoryError(f"more than {_MAX_PAGES} pages of {channel}")

    def _event(self, item: Any, channel: str, now: int) -> Event | None:
        """One item, or None (counted) when nothing can be read from it: one bad item, not the gap."""
        try:
            return normalize(item, channel, now, 0, backfill=True) if isinstance(item, dict) else None
        except Exception as exc:  # a hostile value the dialect did not foresee: this item only
            self.unreadable += 1  # one writer: the recovery thread
            log.debug("backfill: a %s item unreadable: %s", channel, type(exc).__name__)
            return None

    def _get(self, url: str, params: dict[str, str] | None, stop: threading.Event) -> Any:
        config = self.config
        delay = config.backoff_initial or 0.5
        problem = "no attempt"
        for attempt in range(_ATTEMPTS):
            if stop.is_set():
                raise HistoryError("client closed")
            wait = min(delay * (2**attempt), config.backoff_max)  # our own backoff is capped...
            try:
                response = self._http.get(url, params=params, stream=True, **self._request_options)
            except requests.RequestException as exc:
                problem = redact(f"{type(exc).__name__}: {exc}", config.api_key)
            else:
                with response:  # read bounded before it is parsed (a page of a million items is refused)
                    if response.status_code == 200:
                        return read_json(response, "the history page")
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429 or response.status_code >= 500:
                    wait = retry_after(response.headers.get("Retry-After"), wait)
                else:
                    raise HistoryError(problem)
            log.debug("backfill GET %s: %s (attempt %d)", safe_url(url), problem, attempt + 1)
            if stop.wait(wait):  # ...the server's Retry-After is not (beyond retry_after()'s own cap)
                raise HistoryError("client closed")
        raise HistoryError(f"{problem} after {_ATTEMPTS} attempts")


def _page(body: Any) -> tuple[list[Any], str | None]:
    """``{data, next, window}`` or a bare list."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        cursor = body.get("next")
        return body["data"], cursor if isinstance(cursor, str) and cursor else None
    raise HistoryError("the response is neither a page object nor a list")


__all__ = ["ENDPOINTS", "PAGE_LIMIT", "AnaxerHistory", "query_value"]
