"""Client options: one frozen object, validated once, with errors that name the option."""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pumpsync._filters import check_filters
from pumpsync._keys import API_KEY_ENV, choose_api_key
from pumpsync._ranges import RANGES, check_range
from pumpsync._secrets import ApiKey, redact, safe_url
from pumpsync._text import did_you_mean
from pumpsync.errors import ConfigurationError
from pumpsync.options import GROUPS, RENAMED, declared, flat_name, flatten
from pumpsync.providers import PROVIDERS, provider_spec, with_history
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import ClientConfig, ProviderSpec, rest_base

# Proxy schemes that both websocket-client (stream) and requests (REST) understand, and the port each
# assumes when the URL names none (requests' defaults, so that both libraries go to the same place).
PROXY_PORTS = {"http": 80, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}

log = logging.getLogger("pumpsync")

ChannelSpec = Mapping[str, Mapping[str, Any] | None] | Iterable[str | tuple[str, Mapping[str, Any] | None]]


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
    raise_rejections: bool | None = None,
    **options: Any,
) -> ClientConfig:
    """Validate options into a :class:`ClientConfig`: groups (``timeouts=Timeouts(...)``, the provider's
    ``options=``) and flat names (``stale_timeout=``: the CLI's, the daemon file's, a merge's), a group's
    fields set over the flat ones. ``None`` means "the default" (the provider's where it has one)."""
    spec = provider_spec(provider)
    provider = spec.name  # an alias (yellowstone) is its provider
    # (``options`` may be flatten()'s mark already: the class whose fields the flat ones are)
    groups = {name: options.pop(name) for name in (*GROUPS, "options") if name in options}
    if isinstance(groups.get("options"), type):
        options["options"] = groups.pop("options")
    given = {**options, **flatten(groups)}
    cls = given.pop("options", None)
    set_ = [name for name in (flat_name(f) for f in declared(cls)) if given.get(name) is not None] if cls else []
    if cls is not None and cls is not spec.options_class and not set_:  # else the option set is named below
        raise ConfigurationError("options", f"{cls.__name__} are not {provider}'s{_their_options(spec)}")
    changes, mine = _sort(spec, given)
    urls = _urls(url, spec)
    network = changes.setdefault("network", {})
    network.setdefault("auth", spec.default_auth)
    if network["auth"] not in spec.auth_forms:
        auth = network["auth"]
        raise ConfigurationError("auth", f"{auth!r} is not {' or '.join(repr(form) for form in spec.auth_forms)}")
    limits = changes.setdefault("limits", {})
    limits.setdefault("max_frame_size", spec.max_frame_size)
    limits.setdefault("connections", len(urls))  # one connection per node
    built = {group: kind(**changes.get(group, {})) for group, kind in _GROUP_FIELDS.items()}
    for name, group in built.items():
        _check_group(group, name)
    try:
        provider_options = spec.options_class(**mine)
    except TypeError as exc:  # a value the class refuses
        raise ConfigurationError("options", str(exc)) from None
    _check_group(provider_options, "options")
    if raise_rejections is not None and not isinstance(raise_rejections, bool):
        raise ConfigurationError("raise_rejections", f"{raise_rejections!r} is not true or false")
    config = ClientConfig(
        provider=provider,
        api_key=resolve_api_key(api_key, api_key_file, required=spec.key_required),
        url=urls[0],
        urls=urls,
        channels=parse_channels(provider, channels),
        raise_rejections=bool(raise_rejections),
        options=provider_options,
        **built,
    )
    _validate_numbers(config)
    _check_reachable(config, spec)
    if spec.check is not None:
        spec.check(config)
    return config


def _sort(spec: ProviderSpec, given: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Flat options as (group -> field -> value, the provider's own field -> value), the unset
    (None) left out; another provider's option, or none at all, is a ConfigurationError."""
    own = {flat_name(f): f.name for f in declared(spec.options_class)}
    changes: dict[str, dict[str, Any]] = {}
    mine: dict[str, Any] = {}
    for name, value in given.items():
        if name in own:
            if value is not None:
                mine[own[name]] = value
        elif name in _provider_options():
            if value is not None:
                takers = sorted(p for p, s in PROVIDERS.items() if name in _flat_names(s))
                raise ConfigurationError(name, f"{spec.name} does not take this option (only {', '.join(takers)})")
        elif name in RENAMED and RENAMED[name][0] in _GROUP_FIELDS:
            if value is not None:
                group, field_ = RENAMED[name]
                changes.setdefault(group, {})[field_] = value
        else:
            known = [*_GROUP_FIELDS_FLAT, *own, *GROUPS]
            raise ConfigurationError(name, f"no such option{did_you_mean(name, known)}")
    return changes, mine


def _check_reachable(config: ClientConfig, spec: ProviderSpec) -> None:
    """The connection limit, the REST base, the proxy and the CA file; a key about to cross the
    network in clear text is warned about."""
    if spec.max_connections is not None and config.connections > spec.max_connections:
        why = f": {spec.max_connections_reason}" if spec.max_connections_reason else ""
        raise ConfigurationError("connections", f"{spec.name} allows at most {spec.max_connections}{why}")
    if config.rest_url is not None:
        _check_url("rest_url", config.rest_url, ("http", "https"))
    recovers = spec.history is not None and config.backfill
    if config.proxy is not None:
        check_proxy(config.proxy, needs_requests=recovers)
    if config.ca_bundle is not None and not Path(config.ca_bundle).is_file():
        raise ConfigurationError("ca_bundle", f"{config.ca_bundle!r} is not a readable file")
    if config.api_key is not None:
        for each in config.urls:
            warn_plaintext(each)
        if recovers:
            warn_plaintext(rest_base(config))  # gap recovery sends the key in an Authorization header


# The groups a ClientConfig holds (Race is the several-sources client's), and their flat names.
_GROUP_FIELDS = {name: kind for name, kind in GROUPS.items() if name != "race"}
_GROUP_FIELDS_FLAT = [name for name, (group, _) in RENAMED.items() if group in _GROUP_FIELDS]


def _flat_names(spec: ProviderSpec) -> set[str]:
    return {flat_name(f) for f in declared(spec.options_class)}


def _provider_options() -> set[str]:
    """Options that only some providers take (their ``ProviderSpec.options`` classes' fields)."""
    return {name for spec in PROVIDERS.values() for name in _flat_names(spec)}


def _their_options(spec: ProviderSpec) -> str:
    cls = spec.options_class
    return f" (it takes {cls.__name__})" if declared(cls) else " (it takes none)"


def _check_group(group: Any, where: str) -> None:
    """Each field's value against its declared ``check`` (pumpsync.options), naming its flat name."""
    for each in fields(group):
        value, check, name = getattr(group, each.name), each.metadata.get("check", "any"), flat_name(each)
        if value is None and check in ("count|None", "slot", "text", "url"):
            continue
        problem = _problem(check, value)
        if problem:
            raise ConfigurationError(name, problem)
        choices = each.metadata.get("choices") or ()
        if choices and value not in choices and name != "auth":  # auth: the provider's forms, checked above
            hint = did_you_mean(value, choices)
            raise ConfigurationError(name, f"{value!r} is not one of {', '.join(choices)}{hint}")
        if isinstance(value, int) and not isinstance(value, bool) and name in RANGES:
            check_range(name, value)


def _problem(check: str, value: Any) -> str:
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if check in ("seconds", "seconds>=0"):
        if not number or not math.isfinite(value):
            return f"{value!r} is not a number of seconds"
        if value < 0 or (value == 0 and check == "seconds"):
            return "must be positive" if check == "seconds" else "must be >= 0"
    elif check == "seconds|inf":
        if not number or not value > 0:
            return "must be a positive number of seconds (inf: wait forever)"
    elif check in ("count", "count|None"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{value!r} is not a positive whole number"
    elif check == "slot":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return "must be a slot number >= 0"
    elif check == "bool":
        if not isinstance(value, bool):
            return f"{value!r} is not true or false"
    elif check in ("text", "url") and (not isinstance(value, str) or "\x00" in value):
        return f"{value!r} is not a string"
    return ""


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
    """What no single field's check says: how fields relate, and what the provider allows."""
    if config.backoff_initial > config.backoff_max:
        raise ConfigurationError("backoff_initial", "must not exceed backoff_max")
    if config.pong_timeout >= config.stale_timeout:
        raise ConfigurationError("pong_timeout", "must be shorter than stale_timeout")
    if config.since is not None and config.spec.history is None and "since" not in config.spec.capabilities:
        others = with_history()
        verb = "has" if len(others) == 1 else "have"
        raise ConfigurationError(
            "since", f"{config.provider} has no history to start from (only {', '.join(others)} {verb})"
        )


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
