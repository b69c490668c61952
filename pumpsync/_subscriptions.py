"""One source's subscription registry: what every session of it subscribes to.

Copy-on-write: a writer (``subscribe``/``unsubscribe``, a refusal) builds a new read-only
mapping under the registry's lock and publishes it with one assignment; readers (a connection
opening a session, the gap recovery, ``subscriptions()``) take the current mapping without a
lock. The lock is a leaf: nothing is sent and nobody is called while it is held; bringing the
connections' dialects up to date happens after it is released (``frames_for``, under each
connection's own lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from pumpsync.errors import UsageError
from pumpsync.providers.base import Dialect, Subscription
from pumpsync.providers.spec import Outgoing


class Registry:
    """The channels of one source, with their filters; thread-safe (see the module docs)."""

    def __init__(
        self,
        subscriptions: Iterable[Subscription],
        merge: Callable[[Subscription | None, Subscription], Subscription],
        remove: Callable[[Subscription, Mapping[str, Any] | None], Subscription | None],
    ) -> None:
        self._merge = merge  # the dialect's rule for subscribe() on a channel already there
        self._remove = remove  # and for unsubscribe() with filters
        self._lock = threading.Lock()  # writers only
        self._current: Mapping[str, Subscription] = MappingProxyType({sub.channel: sub for sub in subscriptions})
        self._rejected: frozenset[str] = frozenset()

    def snapshot(self) -> list[Subscription]:
        """The subscriptions now (no lock: the mapping is never changed, only replaced)."""
        return list(self._current.values())

    def get(self, channel: str) -> Subscription | None:
        return self._current.get(channel)

    def add(self, sub: Subscription) -> None:
        with self._lock:
            current = self._current
            self._current = MappingProxyType({**current, sub.channel: self._merge(current.get(sub.channel), sub)})
            self._rejected = self._rejected - {sub.channel}

    def remove(self, channel: str, filters: Mapping[str, Any] | None) -> None:
        """Raises UsageError for a channel not subscribed."""
        with self._lock:
            old = self._current.get(channel)
            if old is None:
                raise UsageError(f"not subscribed to {channel!r}")
            rest = self._remove(old, filters)
            registry = dict(self._current)
            if rest is None:
                del registry[channel]
            else:
                registry[channel] = rest
            self._current = MappingProxyType(registry)

    def reject(self, channel: str) -> bool:
        """The provider refused ``channel``: drop it (True), once, and only if we asked for it."""
        with self._lock:
            known = channel not in self._rejected and channel in self._current
            if known:
                self._rejected = self._rejected | {channel}
                self._current = MappingProxyType({k: v for k, v in self._current.items() if k != channel})
        return known

    def frames_for(self, channel: str, dialect: Dialect) -> list[Outgoing]:
        """The frames that bring ``dialect`` to this registry's entry for ``channel`` (run under
        the connection's lock: whichever writer comes last leaves the latest state)."""
        want = self._current.get(channel)
        have = dialect.subscriptions.get(channel)
        if want == have:
            return []
        if want is None:
            return dialect.unsubscribe(channel)
        frames = dialect.unsubscribe(channel) if have is not None and not dialect.diffs else []
        return frames + dialect.subscribe(want)


__all__ = ["Registry"]
