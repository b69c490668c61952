"""Client options: one frozen object, validated once, with errors that name the option."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pumpsync._filters import check_filters
from pumpsync._keys import API_KEY_ENV, choose_api_key
from pumpsync._ranges import check_ranges
from pumpsync._secrets import ApiKey, redact, remember_url, safe_url
from pumpsync._text import did_you_mean
from pumpsync.errors import ConfigurationError
from pumpsync.providers import PROVIDERS, provider_spec, with_history
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import ProviderSpec

# Proxy schemes that both websocket-client (stream) and requests (REST) understand, and the port each
# assumes when the URL names none (requests' defaults, so that both libraries go to the same place).
PROXY_PORTS = {"http": 80, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}

log = logging.getLogger("pumpsync")

ChannelSpec = Mapping[str, Mapping[str, Any] | None] | Iterable[str | tuple[str, Mapping[str, Any] | None]]


@dataclass(frozen=True)
class ClientConfig:
    """Every option of a client. Build it with :func:`make_config`, which validates."""

    provider: str
    api_key: ApiKey | None = field(repr=False)  # None only for a provider that needs no key
    url: str  # the first of ``urls``
    channels: tuple[Subscription, ...] = ()
    connections: int = 1
    ping_interval: float = 30.0  # OpenPump's document: a ping every 30 s
    pong_timeout: float = 10.0
    stale_timeout: float = 60.0  # nothing at all received for this long: the socket is dead
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    limited_backoff: float = 15.0  # floor after a rate-limit / connection-limit close (Anaxer 4002/4003)
    healthy_after: float = 10.0  # a connection open this long resets the backoff
    queue_size: int = 100_000
    connect_timeout: float = 10.0
    hello_timeout: float = 2.0  # Anaxer: no v1 "connected" frame by then means the document form
    max_retries: int | None = None  # consecutive failed attempts before ConnectionLost; None = forever
    # No connection has ever opened this long after start(): ConnectionLost (a typo'd URL ends); inf = forever.
    first_connect_timeout: float = 60.0
    auth: str = "query"  # "query" or "header"
    rest_url: str | None = None
    since: int | None = None
    backfill: bool = True
    # Seconds live events may be held while a gap is recovered; then they go on, and the gap is
    # fetched in the background and reported (Client.gaps()).
    gap_deadline: float = 30.0
    dedup_size: int = 200_000
    max_frame_size: int = 1024 * 1024
    ca_bundle: str | None = None
    proxy: str | None = None
    # Options only some providers take (their SPEC.options); None: the provider's default.
    group: str | None = None  # redis: share the stream's entries among a consumer group
    consumer: str | None = None  # redis: this member's name in the group
    name: str | None = None  # redis: save the reader's position under this name
    raise_rejections: bool = False  # iteration: raise SubscriptionRejected (default: log a warning, go on)
    speed: float | None = None  # replay: the recorded pace times this (0: as fast as the consumer takes them)
    # Every stream URL; connection i uses urls[i % len(urls)] (one connection per node by default).
    urls: tuple[str, ...] = ()
    # PumpPortal: seconds an acknowledged trade channel may stay silent while launches flow before
    # it is reported (the look of an unfunded key); None: the provider's default.
    silent_trades_after: float | None = None
    # Provider-only options (ProviderSpec.options): None here, the provider's default after make_config.
    commitment: str | None = None  # solana: processed / confirmed / finalized
    max_gap_transactions: int | None = None  # solana: transactions one gap recovery may fetch at most

    def __post_init__(self) -> None:
        if not self.urls:
            object.__setattr__(self, "urls", (self.url,))
        remember_url(*self.urls)  # a key in a URL's path or query never reaches a log record

    @property
    def channel_names(self) -> list[str]:
        """The subscribed channels' names, in order."""
        return [sub.channel for sub in self.channels]

    @property
    def spec(self) -> ProviderSpec:
        """The provider's :class:`~pumpsync.providers.spec.ProviderSpec` (what the core knows of it)."""
        return provider_spec(self.provider)

    def url_of(self, connection: int) -> str:
        """The stream URL connection ``connection`` uses."""
        return self.urls[connection % len(self.urls)]

    def __repr__(self) -> str:
        # The dataclass repr, with URLs scrubbed: a proxy URL may carry a password, a stream URL a key
        # (in its query or its path: those show as scheme and host only).
        shown = ", ".join(f"{f.name}={_shown(f.name, getattr(self, f.name))!r}" for f in fields(self) if f.repr)
        return redact(f"ClientConfig({shown})", self.api_key)


def _shown(name: str, value: Any) -> Any:
    if name in ("url", "rest_url") and isinstance(value, str):
        return safe_url(value)
    if name == "urls":
        return tuple(safe_url(url) for url in value)
    return value


_POSITIVE_FLOATS = (
    "backoff_initial",  # 0 would make every reconnect delay 0: a busy loop while the server is down
    "ping_interval",
    "pong_timeout",
    "stale_timeout",
    "backoff_max",
    "connect_timeout",
    "hello_timeout",
    "healthy_after",
    "gap_deadline",
)
_NON_NEGATIVE_FLOATS = ("limited_backoff",)
_POSITIVE_INTS = ("connections", "queue_size", "dedup_size", "max_frame_size")


def resolve_api_key(
    api_key: str | ApiKey | None, api_key_file: str | os.PathLike[str] | None = None, required: bool = True
) -> ApiKey | None:
    """The key: ``api_key``, else ``api_key_file``, else the environment (see :mod:`pumpsync._keys` for
    the one order); None when there is none and ``required`` is false (a free source)."""
    return choose_api_key(api_key, api_key_file, required=required)


def parse_channels(provider: str, channels: ChannelSpec | None) -> tuple[Subscription, ...]:
    spec = provider_spec(provider)
    known = spec.channels
    if channels is None:
        channels = spec.default_channels
    items: list[tuple[str, Mapping[str, Any] | None]] = []
    if isinstance(channels, Mapping):
        items = list(channels.items())
    elif isinstance(channels, str):
        items = [(channels, None)]
    else:
        for item in channels:
            items.append((item, None) if isinstance(item, str) else (item[0], item[1]))
    if items and not known:
        raise ConfigurationError("channels", f"{provider} has no channels: it streams every event")
    subs: dict[str, Subscription] = {}
    for name, filters in items:
        if name not in known:
            hint = f"{did_you_mean(name, known)} (one of {', '.join(known)})"
            raise ConfigurationError("channels", f"unknown {provider} channel {name!r}{hint}")
        if filters is not None and not isinstance(filters, Mapping):
            raise ConfigurationError("channels", f"filters of {name!r} must be a JSON object")
        check_filters(provider, name, filters, spec.filters)
        subs[name] = Subscription(name, dict(filters or {}))
    return tuple(subs.values())


_LOCAL_SCHEMES = ("file", "sqlite")


def _check_url(option: str, url: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        # Network URLs need a host; a file source's (file:PATH, sqlite:PATH) is a local path.
        ok = parts.scheme in schemes and (bool(parts.hostname) or parts.scheme in _LOCAL_SCHEMES)
    except ValueError:  # a bad port or IPv6 literal
        ok = False
    if not ok:
        # A URL is shown cut to scheme://host:port (keys hide in paths); what is no URL at all is the
        # user's typo, shown as typed with only key-like parts (query keys, user:password@) hidden.
        shown = safe_url(url) if "://" in url else redact(url)
        hint = "" if "://" in url or not url else f" (no scheme: did you mean {schemes[0]}://{shown}?)"
        raise ConfigurationError(option, f"{shown!r} is not a {'/'.join(schemes)} URL{hint}")


def make_config(
    provider: str,
    *,
    api_key: str | ApiKey | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
    channels: ChannelSpec | None = None,
    url: str | Sequence[str] | None = None,
    auth: str | None = None,
    **options: Any,
) -> ClientConfig:
    """Validate keyword options into a :class:`ClientConfig`. ``None`` means "the default"."""
    spec = provider_spec(provider)
    allowed = {f.name for f in fields(ClientConfig)} - {"provider", "api_key", "url", "urls", "channels", "auth"}
    for name, value in options.items():
        if name not in allowed:
            raise ConfigurationError(name, "no such option")
        if value is not None and name not in spec.options and name in _provider_options():
            takers = sorted(p for p, s in PROVIDERS.items() if name in s.options)
            raise ConfigurationError(name, f"{provider} does not take this option (only {', '.join(takers)})")
    urls = _urls(url, spec)
    if auth is None:
        auth = spec.default_auth
    if auth not in spec.auth_forms:
        raise ConfigurationError("auth", f"{auth!r} is not {' or '.join(repr(form) for form in spec.auth_forms)}")
    defaults: dict[str, Any] = {"max_frame_size": spec.max_frame_size, **spec.options}
    if options.get("connections") is None and len(urls) > 1:
        defaults["connections"] = len(urls)  # one connection per node
    config = ClientConfig(
        provider=provider,
        api_key=resolve_api_key(api_key, api_key_file, required=spec.key_required),
        url=urls[0],
        urls=urls,
        channels=parse_channels(provider, channels),
        auth=auth,
    )
    config = replace(config, **{**defaults, **{k: v for k, v in options.items() if v is not None}})
    _validate_numbers(config)
    if spec.max_connections is not None and config.connections > spec.max_connections:
        why = f": {spec.max_connections_reason}" if spec.max_connections_reason else ""
        raise ConfigurationError("connections", f"{provider} allows at most {spec.max_connections}{why}")
    if config.rest_url is not None:
        _check_url("rest_url", config.rest_url, ("http", "https"))
    recovers = spec.history is not None and config.backfill
    if config.proxy is not None:
        check_proxy(config.proxy, needs_requests=recovers)
    if config.ca_bundle is not None and not Path(config.ca_bundle).is_file():
        raise ConfigurationError("ca_bundle", f"{config.ca_bundle!r} is not a readable file")
    if config.api_key is not None:
        for each in urls:
            warn_plaintext(each)
        if recovers:
            warn_plaintext(rest_base(config))  # gap recovery sends the key in an Authorization header
    if spec.check is not None:
        spec.check(config)
    return config


def _provider_options() -> set[str]:
    """Options that only some providers take (each a ClientConfig field defaulting to None)."""
    return {name for spec in PROVIDERS.values() for name in spec.options}


def _urls(url: str | Sequence[str] | None, spec: ProviderSpec) -> tuple[str, ...]:
    if url is None:
        urls: tuple[str, ...] = (spec.default_url,)
    elif isinstance(url, str):
        urls = (url or spec.default_url,)
    else:
        urls = tuple(url)
        if not urls:
            raise ConfigurationError("url", "an empty list of URLs")
    for each in urls:
        if not isinstance(each, str):
            raise ConfigurationError("url", f"{each!r} is not a URL")
        _check_url("url", each, spec.url_schemes)
    return urls


def check_proxy(proxy: str, needs_requests: bool = True) -> None:
    """``proxy`` is a URL both transports can use, with the packages a SOCKS proxy needs."""
    try:
        parts = urlsplit(proxy)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError("proxy", f"{redact(proxy)!r} is not a proxy URL") from None
    if parts.scheme not in PROXY_PORTS or not parts.hostname:
        raise ConfigurationError(
            "proxy", f"{redact(proxy)!r} is not a proxy URL (one of {', '.join(s + '://' for s in PROXY_PORTS)})"
        )
    if parts.scheme.startswith("socks"):
        # Without these, websocket-client and requests fail on every attempt, long after startup.
        needed = [("python_socks", "python-socks")]  # websocket-client's SOCKS support
        if needs_requests:
            needed.append(("socks", "PySocks"))  # requests' (Anaxer gap recovery)
        missing = [package for module, package in needed if importlib.util.find_spec(module) is None]
        if missing:
            raise ConfigurationError(
                "proxy", f"a {parts.scheme}:// proxy needs {' and '.join(missing)}: pip install {' '.join(missing)}"
            )


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_plaintext_warned: set[str] = set()
_plaintext_lock = threading.Lock()


def warn_plaintext(url: str) -> None:
    """Warn, once per process and host, that the key would cross the network unencrypted."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("ws", "http") or not host or is_loopback(host):
        return
    with _plaintext_lock:
        if host in _plaintext_warned:
            return
        _plaintext_warned.add(host)
    log.warning(
        "the API key will be sent unencrypted (%s://) to %s: anyone on the network path can read it; "
        "use a wss:// / https:// URL if the provider offers one",
        parts.scheme,
        host,
    )


def _validate_numbers(config: ClientConfig) -> None:
    for name in _POSITIVE_FLOATS + _NON_NEGATIVE_FLOATS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigurationError(name, f"{value!r} is not a number of seconds")
        if value < 0 or (value == 0 and name in _POSITIVE_FLOATS):
            raise ConfigurationError(name, f"must be {'positive' if name in _POSITIVE_FLOATS else '>= 0'}")
    for name in _POSITIVE_INTS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(name, f"{value!r} is not a positive whole number")
    # Memory is sized from these at construction: an absurd value is refused here, not a MemoryError later.
    check_ranges({name: getattr(config, name) for name in ("queue_size", "dedup_size", "max_frame_size")})
    if config.backoff_initial > config.backoff_max:
        raise ConfigurationError("backoff_initial", "must not exceed backoff_max")
    if config.pong_timeout >= config.stale_timeout:
        raise ConfigurationError("pong_timeout", "must be shorter than stale_timeout")
    first = config.first_connect_timeout
    if isinstance(first, bool) or not isinstance(first, (int, float)) or not first > 0:
        raise ConfigurationError("first_connect_timeout", "must be a positive number of seconds (inf: wait forever)")
    if config.max_retries is not None and (isinstance(config.max_retries, bool) or config.max_retries < 1):
        raise ConfigurationError("max_retries", "must be a positive whole number or None")
    if config.since is not None and (isinstance(config.since, bool) or config.since < 0):
        raise ConfigurationError("since", "must be a slot number >= 0")
    if config.since is not None and config.spec.history is None and "since" not in config.spec.capabilities:
        others = with_history()
        verb = "has" if len(others) == 1 else "have"
        raise ConfigurationError(
            "since", f"{config.provider} has no history to start from (only {', '.join(others)} {verb})"
        )


def rest_base(config: ClientConfig) -> str:
    """The REST base for gap recovery: ``rest_url``, else the stream URL's host (ws->http, wss->https)."""
    if config.rest_url:
        return config.rest_url.rstrip("/")
    parts = urlsplit(config.url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc.rpartition('@')[2]}"


__all__ = [
    "API_KEY_ENV",
    "ChannelSpec",
    "ClientConfig",
    "check_proxy",
    "make_config",
    "parse_channels",
    "resolve_api_key",
    "rest_base",
]
