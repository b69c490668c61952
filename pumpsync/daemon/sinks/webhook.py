"""Webhook: POST batches of events as a JSON array, retrying with exponential backoff.

Connection errors, timeouts, 408, 429 and 5xx are retried (``Retry-After`` is honoured up to
``retry_max``); other statuses fail the batch at once. Either way the failures are counted.

Delivery is at least once: a receiver that was too slow to answer may get a batch again. Every
attempt of a batch carries the same ``Idempotency-Key`` header (a hash of its events' ids), and
every event an ``id`` (the SHA-256 of its identity, as in the SQLite sink), so receivers can
de-duplicate. ``timeout`` bounds each whole request, however slowly the receiver answers.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from pumpsync._backoff import retry_after
from pumpsync.daemon.sinks.base import PermanentFailure, Sink, event_json, identity_key
from pumpsync.events import Event

BATCH_HEADER = "Idempotency-Key"

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
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._encoded: tuple[list[Event] | None, bytes, str, int] = (None, b"", "", 0)
        self._http = requests.Session()
        adapter = _tracking_adapter(self._sockets.add)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._http.headers.update({"Content-Type": "application/json", "User-Agent": "pumpsync"})
        self._http.headers.update(dict(headers or {}))

    def describe(self) -> str:
        parts = urlsplit(self.url)  # host and path only: the query or user-info may hold a token
        return f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def write(self, batch: list[Event]) -> int:
        if self._encoded[0] is not batch:  # retries send the very same body and key
            items = list(self.encode_each(batch, _item))
            key = hashlib.sha256("".join(ident for ident, _ in items).encode()).hexdigest()
            body = ("[" + ",".join(text for _, text in items) + "]").encode("utf-8")
            self._encoded = (batch, body, key, len(items))
        _, body, key, count = self._encoded
        if not count:  # every event was unserializable (and counted): nothing to send
            return 0
        # The whole request within `timeout`: requests' own timeout is per socket operation, which a
        # receiver answering a byte at a time never trips. Shutting the socket down ends any wait on it.
        deadline = threading.Timer(self.timeout, self._cut_off)
        deadline.daemon = True
        deadline.start()
        try:
            response = self._http.post(self.url, data=body, timeout=self.timeout, headers={BATCH_HEADER: key})
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            cut = "" if deadline.is_alive() else f" (no answer within {self.timeout:g} s)"
            raise WebhookError(type(exc).__name__ + cut) from None  # the message may quote the URL
        finally:
            deadline.cancel()
        if 200 <= status < 300:
            self._encoded = (None, b"", "", 0)
            return count
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

    def _cut_off(self) -> None:
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


def _item(event: Event) -> tuple[str, str]:
    return identity_key(event), event_json(event, with_id=True)


def _tracking_adapter(track: Callable[[socket.socket], None]) -> HTTPAdapter:
    """An adapter whose connections hand their sockets to ``track`` (so a deadline can shut them down)."""

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = HTTPConnection._new_conn(self)
            track(sock)
            return sock

    class SecureConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = HTTPSConnection._new_conn(self)
            track(sock)
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = SecureConnection

    adapter = HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": SecurePool}
    return adapter
