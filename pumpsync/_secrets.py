"""Keeping the API key out of logs, reprs, exceptions and metrics."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus, urlsplit

_REDACTED = "***"

# Query parameters that carry a key: OpenPump uses api_key, Anaxer uses key.
_QUERY_SECRET = re.compile(r"(?i)([?&;](?:api[_-]?key|key|token|access_token|auth)=)[^&#\s'\"]*")
# An Authorization (or Proxy-Authorization) header in any rendering: a raw HTTP line, a dict repr, JSON.
_AUTH_HEADER = re.compile(
    r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token|digest|apikey)\s+)?)[^\s'\",}]+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")
# The password of a URL's userinfo (proxy credentials: http://user:password@proxy:3128). The
# password may hold "/" (a Redis password often does): it runs to the "@", whatever it holds.
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/@\s:]*:)[^@\s]+(@)")


class ApiKey:
    """An API key whose ``repr``/``str`` never show it. ``reveal()`` is the one way in."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "ApiKey('***')" if self._value else "ApiKey('')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:  # f"{key:>20}" too (object.__format__ refuses specs)
        return format(repr(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:  # never pickled into a file or another process by accident
        raise TypeError("ApiKey cannot be pickled")


def _spellings(value: str) -> list[str]:
    """The forms the key takes in text: as is, percent-encoded (URLs), JSON- and repr-escaped."""
    forms = {value, quote(value, safe=""), quote_plus(value, safe=""), json.dumps(value)[1:-1], repr(value)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, key: ApiKey | None = None) -> str:
    """Remove key material from text bound for a log line or an exception."""
    text = _QUERY_SECRET.sub(r"\1" + _REDACTED, text)
    text = _AUTH_HEADER.sub(r"\1" + _REDACTED, text)
    text = _BEARER.sub(r"\1" + _REDACTED, text)
    text = _USERINFO.sub(r"\1" + _REDACTED + r"\2", text)
    if key is not None:
        value = key.reveal()
        if len(value) >= 4:
            for form in _spellings(value):
                if form in text:
                    text = text.replace(form, _REDACTED)
    return text


def safe_url(url: str) -> str:
    """A URL as it may be shown anywhere (logs, errors, reprs, metrics, CLI output): scheme, host
    and port only. RPC providers put keys in the path (``wss://node.example/KEY/``) as well as in
    the query, and no pattern can tell a key from a path segment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return _REDACTED
    if not parts.scheme or not host:
        return _REDACTED if url else url
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


class RedactingFilter:
    """A logging filter that scrubs key material from every record that passes a handler.

    pumpsync's own messages never contain the key; this guards the libraries beneath us
    (a websocket-client trace prints request headers), including exception tracebacks."""

    def __init__(self, key: ApiKey | None = None) -> None:
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.key)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: render the traceback here, redacted.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.key)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.key)
        return True
