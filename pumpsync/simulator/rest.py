"""Anaxer REST list endpoints, answered from the stream's own history.

Served on the stream's port through websockets' ``process_request`` hook, so every
record a client can backfill is exactly a record the stream published.
"""

from __future__ import annotations

import base64
import binascii
import http
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pumpsync.simulator import filters as flt
from pumpsync.simulator.faults import RestFailure, dumps
from pumpsync.simulator.history import History
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.records import AnaxerRecord
from pumpsync.simulator.server import request_key

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_LIST_PATHS = {"/v1/creations": "creations", "/v1/graduations": "graduations", "/v1/trades": "trades"}
_ERROR_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "plan_restricted",
    404: "not_found",
    429: "rate_limited",
    500: "internal",
    503: "upstream_unavailable",
}
# Query names that are lists (comma-separated) and the singular aliases the SDK sends.
_LIST_PARAMS = {
    "sources": "sources",
    "source": "sources",
    "mints": "mints",
    "mint": "mints",
    "wallets": "wallets",
    "wallet": "wallets",
    "exchange": "exchange",
}
_NUMBER_PARAMS = ("minSol", "minVolumeUsd", "maxVolumeUsd", "minLiquiditySol")
_BOOL_PARAMS = ("excludeMayhem", "solOnly", "enriched")


class BadRequest(ValueError):
    pass


def _response(status: int, body: bytes, extra: list[tuple[str, str]] | None = None) -> Response:
    headers = Headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *(extra or []),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    body = dumps({"error": {"code": _ERROR_CODES.get(status, "internal"), "message": message}})
    extra = [("Retry-After", f"{retry_after:g}")] if retry_after is not None else None
    return _response(status, body.encode(), extra)


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"sim:{index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, index = text.partition(":")
        if prefix != "sim":
            raise ValueError(cursor)
        return int(index)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("invalid cursor") from exc


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer") from exc


def _time_ms(name: str, value: str) -> int:
    """Epoch seconds, epoch milliseconds or ISO-8601."""
    try:
        number = float(value)
    except ValueError:
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError as exc:
            raise BadRequest(f"{name} must be a time") from exc
    return int(number if number > 1e11 else number * 1000)


def query_filters(query: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name, target in _LIST_PARAMS.items():
        if name in query:
            raw.setdefault(target, []).extend(v for v in query[name].split(",") if v)
    for name in _NUMBER_PARAMS:
        if name in query:
            try:
                raw[name] = float(query[name])
            except ValueError as exc:
                raise BadRequest(f"{name} must be a number") from exc
    for name in _BOOL_PARAMS:
        if name in query:
            if query[name] not in ("true", "false", "1", "0"):
                raise BadRequest(f"{name} must be true or false")
            raw[name] = query[name] in ("true", "1")
    if "side" in query:
        raw["side"] = query["side"]
    try:
        return flt.validate(raw)
    except flt.FilterError as exc:
        raise BadRequest(str(exc)) from exc


class RestApi:
    """The REST side of the Anaxer server, given the server's own keys, history and injected failures
    (the same objects, shared: the server appends, the API reads)."""

    def __init__(
        self,
        keys: KeyTable,
        history: History[tuple[AnaxerRecord, str]],
        failures: list[RestFailure],
        current_slot: Callable[[], int],
    ) -> None:
        self._keys = keys
        self._history = history
        self._failures = failures
        self.current_slot = current_slot

    def handle(self, request: Request) -> Response:
        if self._failures:
            failure = self._failures.pop(0)
            retry = failure.retry_after if failure.status == 429 else None
            return error_response(failure.status, "Injected failure", retry)
        plan = self._keys.anaxer(request_key(request, "key"))
        if plan is None:
            return error_response(401, "Invalid or missing API key")
        if plan.rate_limited:
            return error_response(429, "Rate limit exceeded", 1.0)
        parts = urlsplit(request.path)
        channel, mint = self._route(parts.path)
        if channel is None:
            return error_response(404, "Not found")
        if channel not in plan.channels:
            return error_response(403, "Your plan doesn't include this stream.")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            body = self._page(channel, mint, query)
        except BadRequest as exc:
            return error_response(400, str(exc))
        return _response(200, body)

    @staticmethod
    def _route(path: str) -> tuple[str | None, str | None]:
        path = path.rstrip("/")
        if path in _LIST_PATHS:
            return _LIST_PATHS[path], None
        pieces = path.split("/")
        if len(pieces) == 5 and pieces[1:3] == ["v1", "tokens"] and pieces[4] == "trades" and pieces[3]:
            return "trades", unquote(pieces[3])
        return None, None

    def _page(self, channel: str, mint: str | None, query: dict[str, str]) -> bytes:
        since = _int("since", query["since"]) if query.get("since") else None
        limit = _int("limit", query["limit"]) if query.get("limit") else DEFAULT_LIMIT
        if limit < 1:
            raise BadRequest("limit must be at least 1")
        limit = min(limit, MAX_LIMIT)
        start = decode_cursor(query["cursor"]) if query.get("cursor") else 0
        t_from = _time_ms("from", query["from"]) if query.get("from") else None
        t_to = _time_ms("to", query["to"]) if query.get("to") else None
        filters = query_filters(query)
        if mint is not None:
            filters["mints"] = [mint]

        texts: list[str] = []
        slots: list[int] = []
        next_cursor: str | None = None
        for index, (rec, text) in self._history.since(start):
            if rec.channel != channel or (since is not None and rec.slot < since):
                continue
            ts = rec.payload.get("timestamp") or 0
            if (t_from is not None and ts < t_from) or (t_to is not None and ts > t_to):
                continue
            if not flt.matches(filters, rec.record):
                continue
            if len(texts) == limit:
                next_cursor = encode_cursor(index)
                break
            texts.append(text)
            slots.append(rec.slot)
        head = self.current_slot()
        window = {
            "from": slots[0] if slots else (since if since is not None else head),
            "to": slots[-1] if slots else head,
        }
        return (f'{{"data":[{",".join(texts)}],"next":{dumps(next_cursor)},"window":{dumps(window)}}}').encode()
