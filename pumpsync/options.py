"""Client options, declared once, in groups (as httpx's ``Timeout`` and ``Limits``, urllib3's ``Retry``).

::

    pumpsync.Client(
        "anaxer",
        timeouts=pumpsync.Timeouts(stale=20),
        retries=pumpsync.Retries(backoff_max=10),
        limits=pumpsync.Limits(queue_size=50_000),
    )

Each field is declared here once, with its type, default, help and flat name: the flat name is the
CLI flag (``--stale-timeout``), the daemon's TOML key (``stale_timeout``; or ``[timeouts] stale``)
and the keyword ``Client`` took before the groups (still taken for one release, with a
``DeprecationWarning``: :data:`RENAMED` is the one table). A provider's own options are a
:class:`ProviderOptions` subclass declared in its module and named by its ``ProviderSpec.options``.

A leaf module: it imports nothing of the client or the providers, so that both can import it.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypedDict

from pumpsync._text import did_you_mean
from pumpsync.errors import ConfigurationError

# The checks a field's value must pass (``check`` in its metadata); see pumpsync.config.
Check = Literal["seconds", "seconds>=0", "seconds|inf", "count", "count|None", "slot", "bool", "text", "url", "any"]


def option(
    default: Any, help: str, flat: str | None = None, check: Check = "any", choices: tuple[str, ...] = ()
) -> Any:
    """A group's field: its default and what the CLI, the daemon's file and the docs need to know.
    ``flat`` is its name outside the group (the CLI flag, the TOML key, the old keyword); ``check``
    how a value is validated (ranges come from ``pumpsync._ranges`` by the flat name)."""
    return field(default=default, metadata={"help": help, "flat": flat, "check": check, "choices": choices})


@dataclass(frozen=True)
class Timeouts:
    """How long to wait, in seconds. ``stale`` is the health rule: nothing at all received for this long
    and the socket counts as dead (pongs count only where the provider has no data clock)."""

    connect: float = option(10.0, "Seconds to open a connection (TCP, TLS, handshake).", "connect_timeout", "seconds")
    hello: float = option(2.0, "Seconds to wait for a greeting telling the protocol form.", "hello_timeout", "seconds")
    ping_interval: float = option(30.0, "Seconds between heartbeat pings.", "ping_interval", "seconds")
    pong: float = option(10.0, "Seconds to wait for a pong before the socket is dead.", "pong_timeout", "seconds")
    stale: float = option(60.0, "Seconds of silence after which a socket counts as dead.", "stale_timeout", "seconds")
    first_connect: float = option(
        60.0, "Seconds to wait for the first connection before giving up (inf: forever).", "first_connect_timeout",
        "seconds|inf",
    )  # fmt: skip


@dataclass(frozen=True)
class Retries:
    """Reconnecting: full-jitter backoff (uniform in ``[0, min(backoff_max, backoff_initial * 2**n)]``)."""

    backoff_initial: float = option(0.5, "First reconnect delay ceiling, seconds.", "backoff_initial", "seconds")
    backoff_max: float = option(30.0, "Largest reconnect delay, seconds.", "backoff_max", "seconds")
    limited_backoff: float = option(
        15.0, "The least delay after a rate-limit or connection-limit close, seconds.", "limited_backoff", "seconds>=0"
    )
    healthy_after: float = option(10.0, "A connection open this long resets the backoff.", "healthy_after", "seconds")
    limit: int | None = option(
        None, "Consecutive failed reconnects before giving up [never].", "max_retries", "count|None"
    )


@dataclass(frozen=True)
class Limits:
    """Sizes. ``None``: connections one per URL (else 1), the provider's frame size (1 MiB; Solana 32 MiB)."""

    connections: int | None = option(None, "Redundant connections, de-duplicated [1].", "connections", "count|None")
    queue_size: int = option(100_000, "Events the queue holds before the oldest are dropped.", "queue_size", "count")
    dedup_size: int = option(200_000, "Event ids remembered to drop copies.", "dedup_size", "count")
    max_frame_size: int | None = option(
        None, "Largest message in bytes [the provider's].", "max_frame_size", "count|None"
    )


@dataclass(frozen=True)
class Network:
    """Where the key goes, and the way out (TLS certificates are always verified)."""

    auth: str | None = option(None, "Where the key goes [the provider's].", "auth", "text", ("query", "header", "none"))
    proxy: str | None = option(None, "http:// or socks5:// proxy for the stream and REST.", "proxy", "url")
    ca_bundle: str | None = option(None, "CA file for wss://.", "ca_bundle", "text")


@dataclass(frozen=True)
class History:
    """Gap recovery and start position (providers with history: Anaxer, Solana; ``since``: replay too)."""

    since: int | None = option(None, "Start with history from this slot.", "since", "slot")
    backfill: bool = option(True, "Recover gaps after a reconnect.", "backfill", "bool")
    rest_url: str | None = option(None, "REST base for gap recovery [the stream's host].", "rest_url", "url")
    gap_deadline: float = option(
        30.0, "Seconds live events may be held while a gap is recovered.", "gap_deadline", "seconds"
    )


@dataclass(frozen=True)
class Race:
    """Several sources: ``window`` seconds after an event's first copy in which others count as copies of it;
    ``prefer`` maps an event kind to the source whose disagreeing copy replaces the one queued."""

    window: float | None = option(
        None, "Seconds after a first copy in which others are copies [10].", "race_window", "seconds"
    )
    prefer: Mapping[str, str] | None = option(None, "Event kind -> preferred source.", "prefer")


@dataclass(frozen=True)
class ProviderOptions:
    """The base of a provider's own options (``SolanaOptions``, ...): a frozen dataclass of
    :func:`option` fields, named by its ``ProviderSpec.options``. Another provider refuses it."""


# The groups, by the keyword that takes each.
GROUPS: dict[str, type[Any]] = {
    "timeouts": Timeouts,
    "retries": Retries,
    "limits": Limits,
    "network": Network,
    "history": History,
    "race": Race,
}


def _paths() -> dict[str, tuple[str, str]]:
    paths = {}
    for group, kind in GROUPS.items():
        for each in fields(kind):
            paths[each.metadata["flat"]] = (group, each.name)
    return paths


# The one table of old spellings: keyword -> (group, field). Provider options were flat keywords too;
# they now live in their provider's class (``options=SolanaOptions(commitment=...)``).
RENAMED: Mapping[str, tuple[str, str]] = {
    **_paths(),
    **{name: ("options", name) for name in ("commitment", "max_gap_transactions")},  # SolanaOptions
    "silent_trades_after": ("options", "silent_trades_after"),  # PumpPortalOptions
    **{name: ("options", name) for name in ("group", "consumer", "name")},  # RedisOptions
    "speed": ("options", "speed"),  # ReplayOptions
}
OPTION_CLASSES = {"commitment": "SolanaOptions", "max_gap_transactions": "SolanaOptions",
                  "silent_trades_after": "PumpPortalOptions", "group": "RedisOptions", "consumer": "RedisOptions",
                  "name": "RedisOptions", "speed": "ReplayOptions"}  # fmt: skip


class LegacyOptions(TypedDict, total=False):
    """The old keywords of ``Client``/``connect``, typed (mypy still refuses a typo or a wrong type);
    each is deprecated for the group field :data:`RENAMED` names. Kept equal to RENAMED by a test."""

    connect_timeout: float | None
    hello_timeout: float | None
    ping_interval: float | None
    pong_timeout: float | None
    stale_timeout: float | None
    first_connect_timeout: float | None
    backoff_initial: float | None
    backoff_max: float | None
    limited_backoff: float | None
    healthy_after: float | None
    max_retries: int | None
    connections: int | None
    queue_size: int | None
    dedup_size: int | None
    max_frame_size: int | None
    auth: Literal["query", "header", "none"] | None
    proxy: str | None
    ca_bundle: str | None
    since: int | None
    backfill: bool | None
    rest_url: str | None
    gap_deadline: float | None
    race_window: float | None
    prefer: Mapping[str, str] | None
    commitment: Literal["processed", "confirmed", "finalized"] | None
    max_gap_transactions: int | None
    silent_trades_after: float | None
    group: str | None
    consumer: str | None
    name: str | None
    speed: float | None


def set_fields(group: Any) -> Iterator[tuple[str, Any]]:
    """``(field, value)`` for each field of ``group`` not at its default (the ones the user set)."""
    for each in fields(group):
        value = getattr(group, each.name)
        if value != each.default:
            yield each.name, value


def declared(kind: type[Any]) -> list[dataclasses.Field[Any]]:
    """The fields of a group or provider options class, in order (for the CLI and the daemon's file)."""
    return list(fields(kind))


def flat_name(each: dataclasses.Field[Any]) -> str:
    """A field's flat name: the CLI flag's and TOML key's spelling (``stale_timeout``)."""
    return str(each.metadata.get("flat") or each.name)


def flatten(groups: Mapping[str, Any]) -> dict[str, Any]:
    """Group objects (``timeouts=Timeouts(...)``) as flat options (``stale_timeout=...``), the fields set
    only: what the CLI, the daemon and several sources merge (a source's own over the client's)."""
    flat: dict[str, Any] = {}
    for keyword, group in groups.items():
        if group is None:
            continue
        if keyword == "options":
            if not isinstance(group, ProviderOptions):
                raise ConfigurationError("options", f"{group!r} is not a provider's options (e.g. SolanaOptions)")
            flat.update(set_fields(group))
            flat["options"] = type(group)  # whose they are: another provider refuses them
            continue
        kind = GROUPS[keyword]
        if not isinstance(group, kind):
            raise ConfigurationError(keyword, f"{group!r} is not a pumpsync.{kind.__name__}")
        paths = {field_: old for old, (g, field_) in RENAMED.items() if g == keyword}
        flat.update((paths[name], value) for name, value in set_fields(group))
    return flat


def grouped(flat: Mapping[str, Any], options_class: type[ProviderOptions] | None = None) -> dict[str, Any]:
    """The other way: flat options (the CLI's flags, the daemon's keys) as ``Client`` keywords, each
    group built from its fields; a provider option into ``options_class`` (other keys as they are)."""
    out: dict[str, Any] = {}
    changes: dict[str, dict[str, Any]] = {}
    own = {flat_name(f): f.name for f in fields(options_class)} if options_class is not None else {}
    for name, value in flat.items():
        if name in own:
            if value is not None:
                changes.setdefault("options", {})[own[name]] = value
        elif name in RENAMED and RENAMED[name][0] in GROUPS:
            if value is not None:
                group, field_ = RENAMED[name]
                changes.setdefault(group, {})[field_] = value
        else:
            out[name] = value
    for group, values in changes.items():
        kind = options_class if group == "options" else GROUPS[group]
        assert kind is not None  # options only with a class
        out[group] = kind(**values)
    return out


def _suggest(name: str) -> str:
    """``; did you mean ...?`` in the new spelling where the likeliest is an old keyword."""
    hint = did_you_mean(name, [*RENAMED, *GROUPS, "options"])
    meant = hint.partition("'")[2].rpartition("'")[0]
    if meant in RENAMED:
        group, field_ = RENAMED[meant]
        kind = OPTION_CLASSES[meant] if group == "options" else GROUPS[group].__name__
        return f"; did you mean {group}=pumpsync.{kind}({field_}=...)?"
    return hint or " (see pumpsync.options)"


def _outside() -> int:
    """The stacklevel of the first caller outside pumpsync (a warning names the user's line)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "pumpsync":
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def upgrade(groups: Mapping[str, Any], legacy: Mapping[str, Any]) -> dict[str, Any]:
    """``Client``'s group keywords and old flat ones, as flat options. An old keyword works, with a
    DeprecationWarning naming its new spelling (at the user's line); an unknown one is a
    ConfigurationError naming the likeliest meant; one given both ways is refused."""
    flat = flatten(groups)
    for name, value in legacy.items():
        if name not in RENAMED:
            raise ConfigurationError(name, f"no such option{_suggest(name)}")
        if value is None:
            continue
        group, field_ = RENAMED[name]
        where = f"{OPTION_CLASSES[name]}({field_}=...)" if group == "options" else f"{GROUPS[group].__name__}"
        new = f"options=pumpsync.{where}" if group == "options" else f"{group}=pumpsync.{where}({field_}=...)"
        warnings.warn(f"{name}= is deprecated: use {new}", DeprecationWarning, stacklevel=_outside())
        if name in flat:
            raise ConfigurationError(name, f"given twice: as {name}= and in {group}=")
        flat[name] = value
    return flat


def upgrade_mixed(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`upgrade` for a keyword dict holding other keywords too (kept as they are)."""
    groups = {name: kwargs[name] for name in (*GROUPS, "options") if name in kwargs}
    legacy = {name: value for name, value in kwargs.items() if name in RENAMED}
    rest = {name: value for name, value in kwargs.items() if name not in groups and name not in legacy}
    return {**rest, **upgrade(groups, legacy)}


__all__ = [
    "GROUPS",
    "RENAMED",
    "History",
    "LegacyOptions",
    "Limits",
    "Network",
    "ProviderOptions",
    "Race",
    "Retries",
    "Timeouts",
    "declared",
    "flat_name",
    "flatten",
    "grouped",
    "option",
    "set_fields",
    "upgrade",
    "upgrade_mixed",
]
