"""Webhook: POST batches of events as a JSON array, retrying with exponential backoff.

Connection errors, timeouts, 408, 429 and 5xx are retried (``Retry-After`` is honoured up to
``retry_max``); other statuses fail the batch at once. Either way the failures are counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from pumpsync._backoff import retry_after
from pumpsync.daemon.sinks.base import PermanentFailure, Sink, event_json
from pumpsync.events import Event

_RETRY_STATUSES = frozenset({408, 425, 429})


class WebhookError(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class WebhookSink(Sink):
    kind = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        attempts: int = 5,
        **options: Any,
    ) -> None:
        options.setdefault("batch_size", 100)
        options.setdefault("linger", 1.0)
        super().__init__(name, **options)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the webhook URL must be http:// or https:// (got scheme {parts.scheme!r})")
        self.url = url
        self.attempts = attempts
        self.timeout = timeout
        self._retry_after: float | None = None  # from the last failed response
        self._http = requests.Session()
        self._http.headers.update({"Content-Type": "application/json", "User-Agent": "pumpsync"})
        self._http.headers.update(dict(headers or {}))

    def describe(self) -> str:
        parts = urlsplit(self.url)  # host and path only: the query or user-info may hold a token
        return f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def write(self, batch: list[Event]) -> None:
        body = ("[" + ",".join(event_json(event) for event in batch) + "]").encode("utf-8")
        try:
            response = self._http.post(self.url, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise WebhookError(type(exc).__name__) from None  # the message may quote the URL
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return
        if status in _RETRY_STATUSES or status >= 500:
            raise WebhookError(f"HTTP {status}", retry_after(response.headers.get("Retry-After"), 0.0) or None)
        raise PermanentFailure(f"HTTP {status}")

    def close_resources(self) -> None:
        self._http.close()

    def _pause(self, delay: float) -> bool:
        return super()._pause(max(delay, min(self._retry_after or 0.0, self.retry_max)))

    def _failed(self, exc: BaseException, size: int, attempt: int) -> None:
        self._retry_after = exc.wait if isinstance(exc, WebhookError) else None
        super()._failed(exc, size, attempt)
