"""The daemon's settings: TOML file, environment and flags, merged (flags > env > file > defaults).

The file uses the flags' names with underscores, plus ``[channels]`` and ``[[sinks]]`` tables::

    provider = "anaxer"
    connections = 2
    metrics_addr = "127.0.0.1:9108"

    [channels]
    creations = {}
    trades = {}

    [[sinks]]
    type = "sqlite"
    path = "/var/lib/pumpsync/events.sqlite3"

The API key is never read from this file: use ``api_key_file``, ``--api-key-file``,
``PUMPSYNC_API_KEY`` or a systemd credential named ``api_key``.

Every value is checked for its type and range here (a wrong one is a ConfigurationError: one
line, exit status 2), so that nothing fails later, once the daemon runs.

Several sources, one stream: ``[[sources]]`` tables instead of ``provider``, ``url`` and
``[channels]`` (the other client options above them are every source's defaults)::

    race_window = 10

    [[sources]]
    provider = "openpump"
    api_key_file = "/etc/pumpsync/openpump.key"

    [[sources]]
    provider = "anaxer"
    channels = { creations = {} }
    api_key_file = "/etc/pumpsync/anaxer.key"

A source's key: its ``api_key_file``, else ``PUMPSYNC_<PROVIDER>_API_KEY``, else the daemon's
key if it is the only source that needs one and has none of its own.
"""

from __future__ import annotations

import difflib
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pumpsync._keys import choose_api_key
from pumpsync._ranges import check_range, check_ranges
from pumpsync._secrets import ApiKey, safe_url
from pumpsync._sources import Source
from pumpsync._text import did_you_mean
from pumpsync.config import make_config
from pumpsync.errors import ConfigurationError
from pumpsync.metrics import parse_addr
from pumpsync.options import GROUPS, declared, flat_name, grouped
from pumpsync.providers import DEFAULT_PROVIDER, PROVIDERS, provider_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

DEFAULT_METRICS_ADDR = "127.0.0.1:9108"
DEFAULT_DRAIN_TIMEOUT = 10.0
METRICS_OFF = ("off", "none", "")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_SECONDS = 1_000_000.0  # about 11.6 days: beyond it, a timer's wait overflows or means "never"
DEMO_KEY = "pumpsync-demo-key"  # anything works against the simulator; unlike "demo" it never appears in log text

# Client options the file may set, from their declarations (pumpsync.options): each group field by
# its flat name (``stale_timeout``) or in its group's table (``[timeouts] stale``); every provider's
# own options (by name, or in an ``[options]`` table); the plain ones; several sources.
_OPTIONS = {flat_name(f) for kind in GROUPS.values() for f in declared(kind)}
_PROVIDER_OPTIONS = {flat_name(f) for spec in PROVIDERS.values() for f in declared(spec.options_class)}
CLIENT_KEYS = frozenset(
    {"provider", "url", "urls", "channels", "raise_rejections", "sources", *_OPTIONS, *_PROVIDER_OPTIONS}
)
# What one [[sources]] table may set (race_window and prefer are the whole client's).
SOURCE_KEYS = CLIENT_KEYS - {"urls", "sources", "race_window", "prefer"} | {"name", "api_key_file"}
_PER_PROVIDER = ("provider", "url", "urls", "channels", "since", "rest_url", "auth")
# Daemon options and their types (ints are accepted where floats are expected).
DAEMON_KEYS: dict[str, type] = {
    "api_key_file": str,
    "sinks": list,
    "metrics_addr": str,
    "drain_timeout": float,
    "log_level": str,
    "demo": bool,
    "resume": bool,
    "state_dir": str,
}


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``pumpsync daemon`` runs with, except the key (see :func:`resolve_key`)."""

    client: dict[str, Any] = field(default_factory=dict)  # Client keyword arguments (no key)
    sinks: list[dict[str, Any]] = field(default_factory=list)
    metrics_addr: str = DEFAULT_METRICS_ADDR
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    log_level: str = "info"
    demo: bool = False
    api_key_file: str | None = None  # from the file (flags and env go through ``explicit``)
    # Resume after a restart from what the sinks stored (providers with history); False: start from now.
    resume: bool = True
    state_dir: str | None = None  # positions.json lives here; None: $STATE_DIRECTORY, if set

    @property
    def provider(self) -> str:
        if self.sources:
            return "+".join(source.provider for source in self.sources)
        return str(self.client.get("provider", DEFAULT_PROVIDER))

    @property
    def sources(self) -> list[Source]:
        """Several sources (``[[sources]]``, ``--source``), or none: one provider."""
        return list(self.client.get("sources") or ())

    def describe(self) -> dict[str, Any]:
        """The effective settings, JSON-ready, for ``--check``: no key, and URLs as scheme, host and
        port only (a key may sit in a URL's path or query, a Redis password in its userinfo);
        webhook header values hidden; other sink options as given."""
        client = dict(self.client)
        if self.sources:  # what each source was given, never a key
            client["sources"] = [
                {"provider": s.provider, **({"name": s.name} if s.name else {}),
                 **{k: v for k, v in s.options.items() if k != "api_key"}}
                for s in self.sources
            ]  # fmt: skip
        for options in (client, *client.get("sources", ())):
            for option in ("url", "rest_url"):
                value = options.get(option)
                if isinstance(value, str):
                    options[option] = safe_url(value)
                elif isinstance(value, (list, tuple)):
                    options[option] = [safe_url(v) for v in value if isinstance(v, str)]
        sinks = []
        for spec in self.sinks:
            shown = dict(spec)
            if isinstance(shown.get("url"), str):
                shown["url"] = safe_url(shown["url"])
            if isinstance(shown.get("headers"), dict):  # Authorization and the like
                shown["headers"] = dict.fromkeys(shown["headers"], "***")
            sinks.append(shown)
        return {
            "client": client,
            "sinks": sinks or [{"type": "stdout"}],
            "metrics_addr": self.metrics_addr,
            "drain_timeout": self.drain_timeout,
            "log_level": self.log_level,
            "demo": self.demo,
            "resume": self.resume,
            "state_dir": self.state_dir,
        }


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a TOML config file (unknown keys are errors: a typo must not be ignored)."""
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("config", f"{path} is not valid TOML: {exc}") from None
    if "api_key" in data:
        raise ConfigurationError(
            "api_key", "is not read from the config file: use api_key_file or a systemd credential named api_key"
        )
    data = _flat_tables(data)
    for key, value in data.items():
        if key in DAEMON_KEYS:
            data[key] = _typed(key, value, DAEMON_KEYS[key])
        elif key == "channels":
            _check_channels(value)
        elif key == "prefer":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ConfigurationError(key, f"must be a table of event kind = source name, got {value!r}"[:200])
        elif key in CLIENT_KEYS:
            data[key] = _typed(key, value, _client_types().get(key, object))
            _check_value(key, data[key])
        else:
            known = [*DAEMON_KEYS, *CLIENT_KEYS, *GROUPS]
            raise ConfigurationError(key, f"unknown key in {path}{did_you_mean(key, known)}")
    for i, sink in enumerate(data.get("sinks", [])):
        if not isinstance(sink, dict):
            raise ConfigurationError(f"sinks[{i}]", "must be a table ([[sinks]])")
    # A key file named in the config file is read relative to the file, not the working directory.
    for table in [data, *(t for t in data.get("sources", []) if isinstance(t, dict))]:
        if isinstance(table.get("api_key_file"), str):
            table["api_key_file"] = os.path.join(os.path.dirname(os.path.abspath(path)), table["api_key_file"])
    if "sources" in data:
        if not isinstance(data["sources"], list):
            raise ConfigurationError("sources", f"must be [[sources]] tables, got {data['sources']!r}"[:200])
        data["sources"] = [_source(i, table) for i, table in enumerate(data["sources"])]
        _check_source_names(data["sources"])
    return data


def _source(i: int, table: Any) -> Source:
    """One ``[[sources]]`` table, every value typed and checked here (the same error at ``--check``
    and at start, never a traceback once running)."""
    where = f"sources[{i}]"
    if not isinstance(table, dict):
        raise ConfigurationError(where, f"must be a table ([[sources]]), got {type(table).__name__}")
    if "api_key" in table:
        raise ConfigurationError(f"{where}.api_key", "is not read from the config file: use api_key_file")
    table = _flat_tables(table, f"{where}.")
    for key in sorted(set(table) - SOURCE_KEYS):
        close = difflib.get_close_matches(key, sorted(SOURCE_KEYS), n=1)
        raise ConfigurationError(f"{where}.{key}", "unknown key" + (f" (did you mean {close[0]}?)" if close else ""))
    if "provider" not in table:
        raise ConfigurationError(f"{where}.provider", "missing: every source names its provider")
    types_ = _client_types()
    for key, value in table.items():
        name = f"{where}.{key}"
        if key in ("provider", "name", "api_key_file", "url", "rest_url"):
            values = value if key == "url" and isinstance(value, list) and value else [value]
            for item in values:
                _typed(name, item, str)
                if not item or "\x00" in item:
                    raise ConfigurationError(name, f"must be a non-empty string without NUL (got {item!r})")
        elif key == "channels":
            _check_channels(value, name)
        elif key in types_:
            _check_value(name, _typed(name, value, types_[key]))
    options = dict(table)
    provider, label = options.pop("provider"), options.pop("name", None)
    try:
        spec = provider_spec(provider)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}.provider", str(exc).split(": ", 1)[-1]) from None
    key_file = options.pop("api_key_file", None)
    try:  # the provider's own checks (channels, URLs, ranges), without reading the key yet
        check_ranges(options)
        make_config(provider, **options, api_key="placeholder" if spec.key_required else None)
    except ConfigurationError as exc:
        option = exc.option if exc.option in options else {"channel": "channels"}.get(exc.option, exc.option)
        message = str(exc).split(": ", 1)[-1]
        value = options.get(option)
        if option in options and repr(value) not in message and str(value) not in message:
            message += f" (got {value!r})"
        raise ConfigurationError(f"{where}.{option}", message) from None
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:  # a check the provider lacks
        raise ConfigurationError(where, f"a value has the wrong type or size ({exc})") from None
    if key_file is not None:
        options["api_key_file"] = key_file
    try:
        return Source(provider, name=label, **options)
    except ConfigurationError as exc:  # an option that is the client's, not a source's
        raise ConfigurationError(f"{where}.{exc.option}", str(exc).split(": ", 1)[-1]) from None


def _check_source_names(sources: list[Source]) -> None:
    """Each source's label (its name, else its provider) is its own: metrics and errors name it."""
    for i, source in enumerate(sources):
        if source.name is None:
            continue
        for j, other in enumerate(sources):
            if j != i and source.name in (other.name, other.provider if other.name is None else None):
                raise ConfigurationError(f"sources[{max(i, j)}].name", f"{source.name!r} names another source too")


def _check_value(name: str, value: Any) -> None:
    """Bounds no type says: seconds a timer can wait, strings without NUL."""
    if isinstance(value, float) and math.isfinite(value) and abs(value) > MAX_SECONDS:
        raise ConfigurationError(name, f"{value!r} is more than {MAX_SECONDS:,.0f} seconds")
    if isinstance(value, str) and "\x00" in value:
        raise ConfigurationError(name, f"must not contain NUL (got {value!r})")


def _typed(key: str, value: Any, expected: type | tuple[type, ...]) -> Any:
    """``value`` if it has the type (an int where a float is expected becomes one); else ConfigurationError."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        names = " or ".join({bool: "true or false", str: "a string", int: "a whole number"}.get(t, t.__name__)
                            for t in allowed)  # fmt: skip
        raise ConfigurationError(key, f"must be {names} (got {type(value).__name__} {value!r})")
    return value


# The TOML type of each declared check (pumpsync.options).
_CHECK_TYPES: dict[str, tuple[type, ...]] = {
    "seconds": (float,), "seconds>=0": (float,), "seconds|inf": (float,), "count": (int,), "count|None": (int,),
    "slot": (int,), "bool": (bool,), "text": (str,), "url": (str,),
}  # fmt: skip


def _client_types() -> dict[str, tuple[type, ...]]:
    """The TOML types each client option takes, from the declarations (a provider option declared by
    its default only: that default's type)."""
    types_: dict[str, tuple[type, ...]] = {"raise_rejections": (bool,), "provider": (str,), "url": (str,)}
    for kind in [*GROUPS.values(), *(spec.options_class for spec in PROVIDERS.values())]:
        for each in declared(kind):
            check, default = each.metadata.get("check", "any"), each.default
            if check in _CHECK_TYPES:
                types_[flat_name(each)] = _CHECK_TYPES[check]
            elif isinstance(default, (bool, int, float, str)):
                types_[flat_name(each)] = (type(default),)
    return types_


def _flat_tables(table: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Group tables (``[timeouts] stale = 20``, ``[options] commitment = ...``) as flat keys
    (``stale_timeout = 20``); a key given both ways, or a field the group lacks, is an error."""
    out = {key: value for key, value in table.items() if key not in (*GROUPS, "options")}
    for group in [key for key in table if key in (*GROUPS, "options")]:
        values = table[group]
        if not isinstance(values, dict):
            raise ConfigurationError(f"{where}{group}", f"must be a table ([{group}]), got {values!r}"[:200])
        names = (
            {f.name: f.name for spec in PROVIDERS.values() for f in declared(spec.options_class)}
            if group == "options"
            else {f.name: flat_name(f) for f in declared(GROUPS[group])}
        )
        for key, value in values.items():
            if key not in names:
                raise ConfigurationError(f"{where}{group}.{key}", f"unknown key{did_you_mean(key, names)}")
            if names[key] in out:
                raise ConfigurationError(f"{where}{names[key]}", f"given twice: as {names[key]} and in [{group}]")
            out[names[key]] = value
    return out


def _check_channels(value: Any, name: str = "channels") -> None:
    if isinstance(value, list) and all(isinstance(channel, str) for channel in value):
        return
    if isinstance(value, dict) and all(isinstance(filters, dict) for filters in value.values()):
        return
    raise ConfigurationError(name, f"must be a table of channel = {{filters}} (or a list of names), got {value!r}")


def build_config(file: Mapping[str, Any], explicit: Mapping[str, Any]) -> DaemonConfig:
    """Merge file settings with ``explicit`` ones (flags and environment, already parsed) over defaults."""
    merged: dict[str, Any] = {**file, **{k: v for k, v in explicit.items() if v is not None}}
    client = {k: v for k, v in merged.items() if k in CLIENT_KEYS}
    if client.get("sources"):
        given = [key for key in _PER_PROVIDER if key in client]
        if given:
            raise ConfigurationError(given[0], "belongs to one provider: with sources, set it in a [[sources]] table")
    else:
        client.pop("sources", None)
        client.pop("race_window", None)
        client.pop("prefer", None)
        client.setdefault("provider", "openpump")
    level = str(merged.get("log_level", "info")).lower()
    if level not in LOG_LEVELS:
        raise ConfigurationError("log_level", f"{level!r} is not one of {', '.join(LOG_LEVELS)}")
    drain = merged.get("drain_timeout", DEFAULT_DRAIN_TIMEOUT)
    if isinstance(drain, bool) or not isinstance(drain, (int, float)) or not math.isfinite(drain) or drain <= 0:
        raise ConfigurationError("drain_timeout", "must be a positive number of seconds")
    check_ranges(client)
    metrics_addr = str(merged.get("metrics_addr", DEFAULT_METRICS_ADDR))
    if metrics_addr.lower() not in METRICS_OFF:
        _, sep, port = metrics_addr.rpartition(":")
        if sep and port.isdigit():
            check_range("port", int(port), "metrics_addr")
        try:
            parse_addr(metrics_addr)
        except ValueError as exc:
            raise ConfigurationError("metrics_addr", str(exc)) from None
    return DaemonConfig(
        client=client,
        sinks=[dict(s) for s in merged.get("sinks", [])],
        metrics_addr=metrics_addr,
        drain_timeout=float(drain),
        log_level=level,
        demo=bool(merged.get("demo", False)),
        api_key_file=file.get("api_key_file"),
        resume=bool(merged.get("resume", True)),
        state_dir=merged.get("state_dir"),
    )


def client_keywords(options: Mapping[str, Any]) -> dict[str, Any]:
    """The daemon's flat client options (file, flags, resume position) as ``Client`` keywords: the
    option groups and the provider's options class (the flat keywords are deprecated in the API)."""
    provider = options.get("provider")
    own = provider_spec(provider).options_class if isinstance(provider, str) and not options.get("sources") else None
    return grouped(options, own)


def resolve_key(
    config: DaemonConfig,
    api_key: str | None = None,
    api_key_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ApiKey | None:
    """The key, in the one order of :func:`pumpsync._keys.choose_api_key` (flags > environment > file)."""
    return choose_api_key(
        api_key,
        api_key_file,
        environ=environ,
        config_key_file=config.api_key_file,
        fallback=DEMO_KEY if config.demo else None,
        # several sources: each has its own key or names it (the client says which one lacks a key)
        required=not config.sources and provider_spec(config.provider).key_required,
    )
