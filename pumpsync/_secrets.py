"""Keeping the API key out of logs, reprs, exceptions and metrics."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

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
        remember(value)  # every log record of the process is scrubbed of it (see install_log_redaction)

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


# ---------------------------------------------------------------- secrets this process knows of

# Secret values and their spellings, oldest first (a dict is ordered: the oldest go first).
_known: dict[str, tuple[str, ...]] = {}
_known_lock = threading.Lock()
_MAX_KNOWN = 1024
_MIN_SECRET = 6  # shorter values would redact ordinary words
# A URL path segment this long, of these characters, is taken for a key (RPC nodes put keys there);
# redacting an ordinary long segment from a log line costs nothing.
_PATH_KEY = re.compile(r"[A-Za-z0-9_\-.~%]{16,}")
# Query parameters whose value is a secret (others, like a Redis ``stream``, are shown).
_SECRET_NAME = re.compile(r"(?i)key|token|secret|auth|pass|sig|cred")


def remember(*values: str) -> None:
    """Values that must never appear in a log record of this process, whichever logger makes it."""
    with _known_lock:
        for value in values:
            if len(value) >= _MIN_SECRET:
                _known.pop(value, None)
                _known[value] = tuple(_spellings(value))
        while len(_known) > _MAX_KNOWN:
            del _known[next(iter(_known))]


def remember_url(*urls: str) -> None:
    """URLs' secret-looking parts: the password, long path segments, query values."""
    for url in urls:
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            continue
        if not parts.netloc:  # a file, not a server: nothing to hide
            continue
        found = [password or ""]
        found += [segment for segment in parts.path.split("/") if _PATH_KEY.fullmatch(segment)]
        query = parse_qsl(parts.query, keep_blank_values=True)
        found += [value for name, value in query if _SECRET_NAME.search(name)]
        remember(*found)


def scrub(text: str) -> str:
    """:func:`redact` plus every value :func:`remember` was given."""
    text = redact(text)
    with _known_lock:
        known = list(_known.values())
    for forms in known:
        for form in forms:
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


# ---------------------------------------------------------------- every log record of the process

_Factory = Callable[..., logging.LogRecord]


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it itself when a handler formats it
        return
    cleaned = scrub(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters reuse exc_text when it is set: rendered here, scrubbed.
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def install_log_redaction() -> None:
    """Scrub every log record the process creates, whatever logger makes it and whatever handler
    takes it (idempotent; done when pumpsync is imported).

    A ``logging.Filter`` on named loggers does not do: a logger's filters skip records of its
    children (a filter on ``urllib3`` never sees ``urllib3.connectionpool``'s), and handlers
    attached at the root by the user (``logging.basicConfig``) are not ours to filter. Two points
    every record passes: the record factory (ours wraps the one installed before it) and
    ``Logger.makeRecord``, which calls the factory. A program that installs its own factory
    without chaining ours (``logging.setLogRecordFactory(its_own)``) would turn the first off: so
    ``Logger.makeRecord`` scrubs too, unless our factory is the outermost one (it has scrubbed)."""
    previous = logging.getLogRecordFactory()
    if not getattr(previous, "pumpsync_redacting", False):

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub_record(record)
            return record

        factory.pumpsync_redacting = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
    make_record = logging.Logger.makeRecord
    if getattr(make_record, "pumpsync_redacting", False):
        return

    def make_scrubbed_record(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(self, *args, **kwargs)
        if not getattr(logging.getLogRecordFactory(), "pumpsync_redacting", False):
            _scrub_record(record)  # a factory that does not chain ours replaced it
        return record

    make_scrubbed_record.pumpsync_redacting = True  # type: ignore[attr-defined]
    logging.Logger.makeRecord = make_scrubbed_record  # type: ignore[method-assign]


install_log_redaction()
