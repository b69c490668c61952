"""Keeping the API key out of logs, reprs, exceptions and metrics."""

from __future__ import annotations

import re

_REDACTED = "***"

# Query parameters that carry a key: OpenPump uses api_key, Anaxer uses key.
_QUERY_SECRET = re.compile(r"(?i)([?&](?:api_key|apikey|key|token)=)[^&#\s]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")


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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str:  # never pickled into a file or another process by accident
        raise TypeError("ApiKey cannot be pickled")


def redact(text: str, key: ApiKey | None = None) -> str:
    """Remove key material from text bound for a log line or an exception."""
    text = _QUERY_SECRET.sub(r"\1" + _REDACTED, text)
    text = _BEARER.sub(r"\1" + _REDACTED, text)
    if key is not None:
        value = key.reveal()
        if len(value) >= 4 and value in text:
            text = text.replace(value, _REDACTED)
    return text


class RedactingFilter:
    """A logging filter that scrubs key material from every record that passes a handler.

    pumpsync's own messages never contain the key; this guards the libraries beneath us
    (a websocket-client trace prints request headers)."""

    def __init__(self, key: ApiKey | None = None) -> None:
        self.key = key

    def filter(self, record: object) -> bool:
        import logging

        assert isinstance(record, logging.LogRecord)
        message = record.getMessage()
        cleaned = redact(message, self.key)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
