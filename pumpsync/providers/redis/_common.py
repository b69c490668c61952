"""What the redis source and the redis sink share: the ``redis`` package, URLs, numbers, clients."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pumpsync._secrets import redact
from pumpsync.errors import ConfigurationError

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "pumpsync:events"
SCHEMES = ("redis", "rediss")
EXTRA_HINT = "pip install 'pumpsync[redis]'"


def require_redis(what: str = "the redis source") -> ModuleType:
    """The ``redis`` package, or an error that names the extra to install."""
    try:
        import redis
    except ImportError:
        raise ConfigurationError("redis", f"{what} needs the redis package: {EXTRA_HINT}") from None
    return redis


@dataclass(frozen=True)
class StreamURL:
    url: str  # for the redis client: our own query parameters removed
    options: dict[str, str]  # ours


def parse_url(url: str, own: tuple[str, ...]) -> StreamURL:
    """Split our query parameters (``own``) off a ``redis://`` URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError("url", f"{redact(url)!r} is not a redis:// URL") from None
    if parts.scheme not in SCHEMES or not (parts.hostname or parts.path):
        raise ConfigurationError("url", f"{redact(url)!r} is not a redis:// or rediss:// URL")
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in own}
    rest = urlencode([(k, v) for k, v in query if k not in own])
    return StreamURL(urlunsplit(parts._replace(query=rest)), options)


def positive(option: str, value: Any, integer: bool = False) -> float:
    """A number >= 0 from a query parameter or a keyword argument (0 where the option is off)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number < 0 or (integer and not number.is_integer()):
        raise ConfigurationError(option, f"{value!r} is not a {'whole ' if integer else ''}number >= 0")
    return number


def redis_client(url: str, timeout: float, **options: Any) -> Any:
    """A client that fails fast (``timeout`` for connecting and for each reply) and never retries
    on its own: retrying is the caller's decision (a blind retry of an append could double it)."""
    redis = require_redis()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=Retry(NoBackoff(), 0), **options
    )


__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "SCHEMES",
    "StreamURL",
    "parse_url",
    "positive",
    "redis_client",
    "require_redis",
]
