"""Several sources, one stream: ``Client(sources=[Source(...), ...])``.

Each source is a complete single-provider client of its own (connections, heartbeats, backoff,
gap recovery, typed errors, counters) whose delivery shares one :class:`~pumpsync._delivery.Merge`
with the others: one queue, one de-duplication window, one race. A source that fails for good
is reported on the queue as :class:`~pumpsync.errors.SourceFailed` and the others go on; when
every source has failed, :class:`~pumpsync.errors.AllSourcesFailed` (fatal) ends the stream.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pumpsync._delivery import Merge, SeenSet
from pumpsync._gaps import GapReport
from pumpsync._hooks import Hooks
from pumpsync._race import DEFAULT_WINDOW, RaceTracker
from pumpsync._ranges import check_ranges
from pumpsync._secrets import ApiKey
from pumpsync._stats import ClientStats
from pumpsync._text import WarningGate
from pumpsync.client import Client
from pumpsync.config import ClientConfig, make_config
from pumpsync.errors import (
    AllSourcesFailed,
    ClientClosed,
    ConfigurationError,
    EndOfStream,
    PumpsyncError,
    SourceFailed,
    UsageError,
)
from pumpsync.events import KINDS, Event
from pumpsync.options import Limits, upgrade_mixed
from pumpsync.providers import provider_spec
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import Transport

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


def _one_client_per_host(members: Mapping[str, Client]) -> None:
    """Refuse two sources that would each open a socket to a host whose spec allows one per process."""
    seen: dict[tuple[str, str], str] = {}
    for name, member in members.items():
        spec = member.config.spec
        if not spec.one_client_per_host:
            continue
        for url in member.config.urls:
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


@dataclass
class Member:
    """What a source's client needs to know of the whole: its name and index, where to deliver,
    and whom to tell when it fails for good."""

    name: str
    index: int
    merge: Merge
    failed: Callable[[Member, PumpsyncError], None]
    hooks: Hooks | None = None  # the multi-source client's callbacks, told of each source's connections


class MultiClient(Client):
    """The client behind ``Client(sources=[...])``: see :class:`pumpsync.Client`.

    ``get()``, iteration, ``queue``, ``stats()``, ``ready`` and ``close()`` work as with one
    provider. ``members`` maps each source's name to its own client (``subscribe()``,
    ``status()`` and the like go there); ``race`` is the race between them.
    """

    def __init__(
        self,
        provider: str | None = None,
        *,
        sources: Sequence[Source],
        race_window: float | None = None,
        prefer: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        self._hooks = Hooks.pop(options)
        options = upgrade_mixed(options)  # the option groups (and the old keywords, warned) as flat options
        race_window, prefer = options.pop("race_window", race_window), options.pop("prefer", prefer)
        defaults = {name: value for name, value in options.items() if value is not None}
        if provider is not None:
            raise ConfigurationError("sources", "give either a provider or sources, not both")
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
        self.race: RaceTracker | None = RaceTracker(names, window=race_window or DEFAULT_WINDOW)
        self._merge = Merge(queue_size, max(dedup_size, 2 * queue_size), self.race, _preferences(prefer, names))
        self._conflict_gate = WarningGate()
        self.queue = self._merge.queue
        self._names = names
        self._capacity = queue_size
        members: dict[str, Client] = {}
        for index, (source, name) in enumerate(zip(sources, names, strict=True)):
            given = {**defaults, "queue_size": queue_size, "dedup_size": dedup_size}
            owner = lacking == [source]
            if owner:
                given.update(shared_key)
            config = source_config(source, given, key_owner=owner)
            place = Member(name, index, self._merge, self._source_failed, self._hooks)
            members[name] = Client._member(config, place)
        self._members = members
        _one_client_per_host(members)
        for name, member in members.items():
            if member._takers is not None:
                raise ConfigurationError(
                    "sources", f"source {name}: its transport acknowledges what you took, which one stream of "
                    "several sources cannot tell it: use it as a client of its own",
                )  # fmt: skip
        self._takers = None
        self.config = next(iter(members.values())).config  # the first source's, for code that wants one
        self._lifecycle = threading.Lock()
        self._state = "new"
        self._failed: dict[str, PumpsyncError] = {}
        self.error: PumpsyncError | None = None

    def get(self, timeout: float | None = None) -> Event:
        self._warn_conflicts()
        return super().get(timeout)

    def _warn_conflicts(self) -> None:
        """Warn (once a minute per field and pair) about copies that disagreed; on the consumer's
        thread, with no lock held (the race only records them)."""
        race = self.race
        if race is None:
            return
        for kind, field_name, first, second in race.take_unreported():
            held = self._conflict_gate.allow(f"{field_name}:{first}:{second}")
            if held is not None:
                log.warning(
                    "sources disagree: %s's %s %s differs from %s's (first, delivered)%s",
                    second, kind, field_name, first,
                    f" ({held} more of these in the last minute, not logged)" if held else "",
                )  # fmt: skip

    @property
    def conflicts_replaced(self) -> int:
        """Queued copies the preferred source's disagreeing copy replaced (``prefer``)."""
        return self._merge.replaced

    def __repr__(self) -> str:
        return f"<pumpsync.Client sources={'+'.join(self._names)} {self._state}>"

    @property
    def members(self) -> dict[str, Client]:
        return dict(self._members)

    def source_keys(self) -> list[ApiKey]:
        """Every source's key (for log redaction)."""
        return [m.config.api_key for m in self._members.values() if m.config.api_key is not None]

    @property
    def failed_sources(self) -> dict[str, PumpsyncError]:
        """The sources that failed for good, with their errors."""
        with self._lifecycle:
            return dict(self._failed)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> MultiClient:
        self._mark_running()
        for member in self._members.values():
            member.start()
        if self._hooks is not None:
            self._hooks.start(self)
        return self

    def close(self, timeout: float = 5.0) -> None:
        state = self._mark_closed()
        if state == "closed":
            return
        deadline = time.monotonic() + timeout
        for member in self._members.values():
            member.close(max(0.0, deadline - time.monotonic()))
        if self.race is not None and state != "new":
            self.race.finish()  # the stream has ended: decide what is still open
        self._merge.seen = SeenSet(1)  # the members let go of it too: free the tables at once
        self._merge.queue.put(ClientClosed("the client was closed"))
        if self._hooks is not None and not self._hooks.stop(max(0.0, deadline - time.monotonic())):
            log.warning("close(): the hooks' thread is still running (a callback has not returned)")

    def _source_failed(self, member: Member, error: PumpsyncError) -> None:
        """A source failed for good (its own client has stopped): tell the consumer, go on with
        the others, and end the stream only when none is left. Safe from any thread."""
        with self._lifecycle:
            if member.name in self._failed or self.error is not None:
                return
            self._failed[member.name] = error
            every = len(self._failed) == len(self._members)
            if every and all(isinstance(e, ClientClosed) for e in self._failed.values()):
                self.error = EndOfStream("every source has ended")  # replays, all at their end: no failure
            elif every:
                self.error = AllSourcesFailed(
                    "every source failed: " + "; ".join(f"{n}: {e}" for n, e in self._failed.items()),
                    dict(self._failed),
                )
        # Printed once: by the CLI (as the item it reads), not also as a log line (see setup_logging).
        log.error(
            "source %s failed: %s%s", member.name, error, "" if every else "; the other sources go on",
            extra={"pumpsync_fatal": True},
        )  # fmt: skip
        self._merge.queue.put(SourceFailed(member.name, error))
        if self.error is not None and every:
            self._merge.queue.put(self.error)

    # ------------------------------------------------------------------ per-source operations
    def subscriptions(self) -> list[Subscription]:
        return [sub for member in self._members.values() for sub in member.subscriptions()]

    def subscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        raise UsageError("several sources: subscribe on one of them, client.members[name].subscribe(...)")

    def unsubscribe(self, channel: str, filters: Mapping[str, Any] | None = None) -> None:
        raise UsageError("several sources: unsubscribe on one of them, client.members[name].unsubscribe(...)")

    def status(self, timeout: float = 5.0) -> dict[str, Any]:
        raise UsageError("several sources: ask one of them, client.members[name].status()")

    # ------------------------------------------------------------------ health
    def _alive(self) -> list[Client]:
        failed = self.failed_sources
        return [m for name, m in self._members.items() if name not in failed]

    @property
    def supervisor_alive(self) -> bool:
        """Every source still running has its supervisor (a failed one has stopped for good)."""
        alive = self._alive()
        return bool(alive) and all(m.supervisor_alive for m in alive)

    @property
    def transports(self) -> tuple[Transport, ...]:
        return tuple(t for m in self._members.values() for t in m.transports)

    @property
    def connected(self) -> bool:
        return any(m.connected for m in self._members.values())

    @property
    def ready(self) -> bool:
        """At least one source has a healthy connection (degraded is still ready)."""
        return any(m.ready for m in self._members.values())

    def gaps(self) -> list[GapReport]:
        """Every source's gaps of late, oldest first (each report names its provider)."""
        return sorted((gap for m in self._members.values() for gap in m.gaps()), key=lambda gap: gap.opened_at)

    def stats(self) -> dict[str, Any]:
        sources = {name: m.raw_stats.snapshot() for name, m in self._members.items()}
        total = self.raw_stats
        snapshot = total.snapshot()
        snapshot["sources"] = sources
        snapshot["failed"] = {name: str(error) for name, error in self.failed_sources.items()}
        snapshot["race"] = self.race.snapshot() if self.race is not None else None
        snapshot["conflicts_replaced"] = self._merge.replaced
        snapshot["queue_depth"] = self.queue.qsize()
        snapshot["queue_capacity"] = self._capacity
        if self._hooks is not None:
            snapshot["hooks"] = self._hooks.snapshot()
        return snapshot

    @property
    def raw_stats(self) -> ClientStats:
        """Every source's counters summed (a copy; the connection entries are the live ones)."""
        members = list(self._members.values())
        connections = [c for m in members for c in m.raw_stats.connections]
        total = ClientStats("+".join(self._names), self._capacity, connections)
        for member in members:
            stats = member.raw_stats
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


__all__ = ["CLIENT_WIDE", "Member", "MultiClient", "Source", "provider_key_env", "source_config", "source_names"]
