"""Several sources, one stream: ``Client(sources=[Source(...), ...])``: what each source is.

:func:`plan_sources` turns the sources and the client's options into one config per source,
their names and the race between them; the client builds one engine (``_engine.py``) per
source over one :class:`~pumpsync._delivery.Merge`: one queue, one de-duplication window, one
race. A source that fails for good is reported on the queue as
:class:`~pumpsync.errors.SourceFailed` and the others go on; when every source has failed,
:class:`~pumpsync.errors.AllSourcesFailed` (fatal) ends the stream (``Client._source_failed``).
This module knows nothing of the client (no import of it: no cycle).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pumpsync._race import DEFAULT_WINDOW, RaceTracker
from pumpsync._ranges import check_ranges
from pumpsync._stats import ClientStats
from pumpsync._text import WarningGate
from pumpsync.config import ClientConfig, make_config
from pumpsync.errors import (
    AllSourcesFailed,
    ClientClosed,
    ConfigurationError,
    EndOfStream,
    PumpsyncError,
    SourceFailed,
)
from pumpsync.events import KINDS
from pumpsync.options import Limits
from pumpsync.providers import provider_spec

log = logging.getLogger("pumpsync")

# Options of the one queue all sources share: given to Client(...), never to a Source.
CLIENT_WIDE = ("queue_size", "dedup_size")
_DEFAULT_QUEUE_SIZE: int = Limits().queue_size
_DEFAULT_DEDUP_SIZE: int = Limits().dedup_size


class Source:
    """One source of a multi-source client: a provider and the options ``Client`` takes for it.

    ``name`` labels the source in statistics, metrics and errors (default: the provider, with
    ``-2``, ``-3``... for a provider used more than once). ``repr()`` shows no option values,
    so a key never reaches a log through it.
    """

    __slots__ = ("name", "options", "provider")

    def __init__(self, provider: str, *, name: str | None = None, **options: Any) -> None:
        if not isinstance(provider, str) or not provider:
            raise ConfigurationError("sources", f"a source needs a provider name, got {provider!r}")
        for option in CLIENT_WIDE:
            if options.get(option) is not None:
                raise ConfigurationError(option, "is the client's (one queue for every source): pass it to Client()")
        self.provider = provider
        self.name = name
        self.options = dict(options)

    def __repr__(self) -> str:
        shown = f", name={self.name!r}" if self.name else ""
        return f"Source({self.provider!r}{shown}, options={sorted(self.options)})"


def source_names(sources: Sequence[Source]) -> list[str]:
    """Distinct labels: each source's name, else its provider, numbered from the second use on."""
    names: list[str] = []
    uses: Counter[str] = Counter()
    for source in sources:
        base = source.name or source.provider
        uses[base] += 1
        name = base if uses[base] == 1 else f"{base}-{uses[base]}"
        while name in names:
            uses[base] += 1
            name = f"{base}-{uses[base]}"
        names.append(name)
    if len(set(names)) != len(names):
        raise ConfigurationError("sources", f"source names must be distinct, got {names}")
    return names


def _one_client_per_host(configs: Mapping[str, ClientConfig]) -> None:
    """Refuse two sources that would each open a socket to a host whose spec allows one per process."""
    seen: dict[tuple[str, str], str] = {}
    for name, config in configs.items():
        spec = config.spec
        if not spec.one_client_per_host:
            continue
        for url in config.urls:
            host = (spec.name, (urlsplit(url).hostname or "").lower())
            other = seen.setdefault(host, name)
            if other != name:
                raise ConfigurationError(
                    "sources",
                    f"sources {other} and {name} would open two connections to {host[1]}: "
                    f"{spec.max_connections_reason}. Give one {spec.name} source every channel instead",
                )


def provider_key_env(provider: str) -> str:
    """The environment variable holding one provider's key when several sources are used."""
    return f"PUMPSYNC_{provider.upper().replace('-', '_')}_API_KEY"


def _own_key(source: Source) -> bool:
    """The source has a key of its own: in its options, or in ``PUMPSYNC_<PROVIDER>_API_KEY``."""
    options = source.options
    given = options.get("api_key") is not None or options.get("api_key_file") is not None
    return given or bool(os.environ.get(provider_key_env(source.provider)))


def source_config(source: Source, defaults: Mapping[str, Any], key_owner: bool) -> ClientConfig:
    """The config of one source: the client-wide ``defaults`` under the source's own options.

    The key: the source's ``api_key``/``api_key_file``, else ``PUMPSYNC_<PROVIDER>_API_KEY``,
    else ``PUMPSYNC_API_KEY`` but only for ``key_owner`` (the one needing a key without its own). A key
    meant for one provider is never sent to another: a free source gets none unless given one."""
    options = {**defaults, **source.options}
    explicit = options.get("api_key") is not None or options.get("api_key_file") is not None
    if not explicit and os.environ.get(provider_key_env(source.provider)):
        options["api_key"] = os.environ[provider_key_env(source.provider)]
        explicit = True
    if not explicit and not key_owner and provider_spec(source.provider).key_required:
        raise ConfigurationError(
            "api_key",
            f"source {source.name or source.provider} needs a key of its own (several sources need one): "
            f"api_key=... in its Source, or {provider_key_env(source.provider)}",
        )
    try:
        config = make_config(source.provider, **options)
    except ConfigurationError as exc:
        if exc.option != "api_key" or explicit:
            raise
        reason = str(exc).split(": ", 1)[-1]
        raise ConfigurationError(
            "api_key", f"source {source.name or source.provider}: {reason}, or {provider_key_env(source.provider)}"
        ) from None
    if not explicit and not config.spec.key_required:
        config = replace(config, api_key=None)  # a free source: no key at all (not PUMPSYNC_API_KEY)
    return config


def _preferences(prefer: Mapping[str, str] | None, names: Sequence[str]) -> dict[str, int]:
    """``prefer`` (kind -> source name) as kind -> source index, checked."""
    if prefer is None:
        return {}
    if not isinstance(prefer, Mapping):
        raise ConfigurationError("prefer", "give a mapping of event kind to source name")
    out = {}
    for kind, name in prefer.items():
        if kind not in KINDS:
            raise ConfigurationError("prefer", f"{kind!r} is not an event kind ({', '.join(KINDS)})")
        if name not in names:
            raise ConfigurationError("prefer", f"{name!r} is not one of the sources ({', '.join(names)})")
        out[kind] = list(names).index(name)
    return out


@dataclass(frozen=True)
class Plan:
    """What the client builds its engines from: each source's config by name (in order), the
    race between them (None: one source), ``prefer`` by source index, and the queue's sizes."""

    configs: dict[str, ClientConfig]
    race: RaceTracker | None
    prefer: dict[str, int]
    queue_size: int
    dedup_size: int


def single_source(config: ClientConfig) -> Plan:
    """One provider: one engine named after it, no race."""
    return Plan({config.provider: config}, None, {}, config.queue_size, config.dedup_size)


def plan_sources(
    sources: Sequence[Source],
    race_window: float | None,
    prefer: Mapping[str, str] | None,
    options: dict[str, Any],
) -> Plan:
    """Several sources: each one's config (the client's ``options`` as every source's defaults,
    under its own), checked; raises ConfigurationError naming what is wrong."""
    defaults = {name: value for name, value in options.items() if value is not None}
    if not sources:
        raise ConfigurationError("sources", "give at least one Source")
    for source in sources:
        if not isinstance(source, Source):
            raise ConfigurationError("sources", f"expected pumpsync.Source objects, got {type(source).__name__}")
    check_ranges(defaults)  # before the queue and the de-duplication tables are sized by them
    if race_window is not None and (
        isinstance(race_window, bool) or not isinstance(race_window, (int, float)) or not 0 < race_window < 1e6
    ):
        raise ConfigurationError("race_window", f"{race_window!r} is not a positive number of seconds")
    names = source_names(sources)
    # The sources that need a key and have none of their own: the client's key (api_key=,
    # PUMPSYNC_API_KEY) is the one such source's, never the others'.
    lacking = [s for s in sources if provider_spec(s.provider).key_required and not _own_key(s)]
    shared_key: dict[str, Any] = {n: defaults.pop(n) for n in ("api_key", "api_key_file") if n in defaults}
    if shared_key and len(lacking) > 1:
        raise ConfigurationError(
            "api_key",
            f"a key given to Client() goes to the one source that needs a key, and {len(lacking)} lack one: "
            "give each Source its own api_key",
        )
    queue_size = defaults.get("queue_size") or _DEFAULT_QUEUE_SIZE
    dedup_size = defaults.get("dedup_size") or _DEFAULT_DEDUP_SIZE
    configs: dict[str, ClientConfig] = {}
    for source, name in zip(sources, names, strict=True):
        given = {**defaults, "queue_size": queue_size, "dedup_size": dedup_size}
        owner = lacking == [source]
        if owner:
            given.update(shared_key)
        configs[name] = source_config(source, given, key_owner=owner)
    _one_client_per_host(configs)
    race = RaceTracker(names, window=race_window or DEFAULT_WINDOW)
    return Plan(configs, race, _preferences(prefer, names), queue_size, dedup_size)


def summed_stats(label: str, capacity: int, members: Sequence[ClientStats]) -> ClientStats:
    """Every source's counters summed (a copy; the connection entries are the live ones)."""
    connections = [c for stats in members for c in stats.connections]
    total = ClientStats(label, capacity, connections)
    for stats in members:
        total.duplicates += stats.duplicates
        total.dropped += stats.dropped
        total.held += stats.held
        total.events.update(stats.events)
        total.backfill_requests += stats.backfill_requests
        total.backfill_events += stats.backfill_events
        total.backfill_failures += stats.backfill_failures
        total.rejected.update(stats.rejected)
        total.notices.update(stats.notices)
        total.implausible.update(stats.implausible)
        total.thread_failures.update(stats.thread_failures)
        total.started_at = min(total.started_at, stats.started_at)
    return total


class Failures:
    """What the sources' failures for good mean for the stream. One source: its failure is the
    stream's fatal error. Several: each is a ``SourceFailed`` item and the others go on; when none
    is left, ``AllSourcesFailed`` (or ``EndOfStream``: every one a replay at its end) ends it.
    Thread-safe; the lock is a leaf (the caller queues the items after it)."""

    def __init__(self, sources: int, several: bool) -> None:
        self._sources = sources
        self._several = several
        self._lock = threading.Lock()
        self._failed: dict[str, PumpsyncError] = {}  # several sources only
        self.error: PumpsyncError | None = None  # the stream's end, once decided

    def failed(self) -> dict[str, PumpsyncError]:
        with self._lock:
            return dict(self._failed)

    def record(self, name: str, error: PumpsyncError) -> list[PumpsyncError]:
        """Source ``name`` failed with ``error``: the items to queue for the consumer (none if it
        was known already or the stream has ended)."""
        with self._lock:
            if self.error is not None or name in self._failed:
                return []
            if not self._several:
                self.error = error
                return [error]
            self._failed[name] = error
            if len(self._failed) == self._sources:
                failed = self._failed
                if all(isinstance(e, ClientClosed) for e in failed.values()):
                    self.error = EndOfStream("every source has ended")  # replays, all at their end: no failure
                else:
                    detail = "; ".join(f"{n}: {e}" for n, e in failed.items())
                    self.error = AllSourcesFailed("every source failed: " + detail, dict(failed))
        # Printed once: by the CLI (as the item it reads), not also as a log line (see setup_logging).
        log.error(
            "source %s failed: %s%s", name, error, "" if self.error else "; the other sources go on",
            extra={"pumpsync_fatal": True},
        )  # fmt: skip
        return [SourceFailed(name, error)] + ([self.error] if self.error is not None else [])


class ConflictWarnings:
    """Warn (once a minute per field and pair) about copies that disagreed; on the consumer's
    thread, with no lock held (the race only records them)."""

    def __init__(self, race: RaceTracker) -> None:
        self._race = race
        self._gate = WarningGate()

    def warn(self) -> None:
        for kind, field_name, first, second in self._race.take_unreported():
            held = self._gate.allow(f"{field_name}:{first}:{second}")
            if held is not None:
                log.warning(
                    "sources disagree: %s's %s %s differs from %s's (first, delivered)%s",
                    second, kind, field_name, first,
                    f" ({held} more of these in the last minute, not logged)" if held else "",
                )  # fmt: skip


__all__ = [
    "CLIENT_WIDE",
    "ConflictWarnings",
    "Failures",
    "Plan",
    "Source",
    "plan_sources",
    "provider_key_env",
    "single_source",
    "source_config",
    "source_names",
    "summed_stats",
]
