"""The Redis side of reading a stream: the reader's options and the cursor (where we are, what
we hold, what is committed), shared by :class:`~pumpsync.providers.redis.RedisReader` and the
client's :class:`~pumpsync.providers.redis.source.RedisFeed`."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pumpsync._secrets import remember_url, safe_url
from pumpsync.errors import ConfigurationError
from pumpsync.providers.redis._common import DEFAULT_STREAM, parse_url, positive, redis_client, require_redis

log = logging.getLogger("pumpsync.redis")

BLOCK = 0.5  # seconds a read waits for new entries: how soon close() is noticed
_STATS_EVERY = 1.0  # seconds between looks at the stream's end (lag) and the group's pending entries
READ_BUDGET = 8 * 1024 * 1024  # bytes one read may bring in (entries of several MiB: fewer per read)

Entry = tuple[str, "Mapping[str, str] | None"]  # (stream ID, fields); fields None: deleted while pending
OPTIONS = ("stream", "since", "name", "group", "consumer", "claim_timeout", "batch")


def _size(fields: Mapping[str, str] | None) -> int:
    return sum(len(k) + len(v) for k, v in fields.items()) if fields else 0


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0] or 0)


def _id(entry_id: str) -> tuple[int, int]:
    """A stream ID as a comparable (ms, seq); an unparsable one as (0, 0)."""
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0)) if ms.isdigit() and (seq or "0").isdigit() else (0, 0)


def _valid_id(text: str) -> bool:
    ms, sep, seq = text.partition("-")
    return ms.isdigit() and (not sep or seq.isdigit())


@dataclass(frozen=True)
class ReaderOptions:
    """What to read and how (see the module docs); keyword arguments win over the URL's query."""

    url: str = field(repr=False)  # for the redis client (our query parameters removed); may hold a password
    stream: str
    since: str
    name: str | None
    group: str | None
    consumer: str
    claim_timeout: float
    batch: int

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "url")
        return f"ReaderOptions(url={safe_url(self.url)!r}, {shown})"

    @classmethod
    def build(cls, url: str, **given: Any) -> ReaderOptions:
        remember_url(url)  # its password never reaches a log record
        parsed = parse_url(url, OPTIONS)
        values = {**parsed.options, **{k: v for k, v in given.items() if v is not None}}
        unknown = set(values) - set(OPTIONS)
        if unknown:
            raise ConfigurationError(sorted(unknown)[0], "no such option")
        options = cls(
            url=parsed.url,
            stream=str(values.get("stream") or DEFAULT_STREAM),
            since=str(values.get("since", "$")),
            name=values.get("name") or None,
            group=values.get("group") or None,
            consumer=str(values.get("consumer") or f"{socket.gethostname()}-{os.getpid()}"),
            claim_timeout=positive("claim_timeout", values.get("claim_timeout", 30)),
            batch=int(positive("batch", values.get("batch", 100), integer=True)),
        )
        if options.batch < 1 or options.claim_timeout <= 0:
            raise ConfigurationError("batch" if options.batch < 1 else "claim_timeout", "must be positive")
        if options.group and options.name:
            raise ConfigurationError("name", "a group keeps its own position: give a name or a group, not both")
        if options.since != "$" and not _valid_id(options.since):
            raise ConfigurationError("since", f"{options.since!r} is not a stream ID (like 1700000000000-0), 0 or $")
        return options


class StreamCursor:
    """The Redis side of reading: where we are, what we hold, what is committed.

    One thread calls :meth:`open` and :meth:`fetch`; :meth:`consumed` and :meth:`commit` may be
    called from another (the consumer's)."""

    def __init__(self, options: ReaderOptions, timeout: float) -> None:
        redis = require_redis()
        self.options = options
        self.errors = redis.RedisError
        self.refusals = (redis.AuthenticationError, redis.exceptions.AuthorizationError)
        # An entry that is not UTF-8 must not fail the whole read (and the reads after it): its bytes
        # come through as surrogate escapes, which the dialect refuses as invalid_utf8, alone.
        self.redis: Any = redis_client(
            options.url, timeout + BLOCK, decode_responses=True, encoding_errors="surrogateescape"
        )
        self.group = options.group
        self._lock = threading.Lock()
        self._held: set[str] = set()  # group mode: read by us, not yet acknowledged
        self._done: list[str] = []  # consumed, not yet committed; oldest first
        self._last: str | None = None  # plain: the newest entry read; group: our backlog's page
        self._backlog = False
        self._cap = 1  # entries per read at most: READ_BUDGET over the largest entry of the last read
        self._next_claim = self._next_stats = 0.0
        self.connects = 0
        self.claimed = 0
        self.commit_failures = 0
        self.rewinds = 0  # the stream went back behind our position (see _rewind_if_behind)
        self.lag_seconds = 0.0
        self.lag_entries: int | None = None
        self.pending: int | None = None

    @property
    def position_key(self) -> str:
        return f"{self.options.stream}:position:{self.options.name}"

    def open(self) -> None:
        """(Re)connect: the group exists (our own unacknowledged entries come first), or the position is known."""
        options = self.options
        self.redis.ping()
        if self.group:
            try:
                self.redis.xgroup_create(options.stream, self.group, id=options.since, mkstream=True)
            except self.errors as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._last, self._backlog = None, True
        elif self._last is None:
            self._last = self._start_position()
        self.connects += 1

    def _start_position(self) -> str:
        """Plain mode: the saved position, else ``since`` ($ resolved now, so a reconnect leaves no gap)."""
        if self.options.name:
            saved = self.redis.get(self.position_key)
            if saved:
                return str(saved)
        if self.options.since != "$":
            return self.options.since
        try:
            info = self.redis.xinfo_stream(self.options.stream)
        except self.errors as exc:
            if "no such key" not in str(exc).lower():
                raise
            return "0-0"  # no stream yet: everything it will hold is new
        return str(info["last-generated-id"])

    def fetch(self, room: int, in_hand: str | None = None) -> list[Entry]:
        """The next entries (at most ``room``) new to us; waits up to half a second for them.

        Memory is bounded by size as well as by count: a read takes as many entries as
        ``READ_BUDGET`` holds of the largest one of the read before (one, the first time), so that a
        stream of 32 MiB entries is read one at a time while one of small events reads full batches."""
        entries = self._fetch(max(1, min(room, self._cap)), in_hand)
        if entries:
            self._cap = max(1, READ_BUDGET // max(1, max(_size(fields) for _, fields in entries)))
        return entries

    def _fetch(self, room: int, in_hand: str | None) -> list[Entry]:
        now = self.tend(in_hand)
        stream, group = self.options.stream, self.group
        if group is None:
            assert self._last is not None
            answer = self.redis.xread({stream: self._last}, count=room, block=int(BLOCK * 1000))
            entries: list[Entry] = list(answer[0][1]) if answer else []
            if entries:
                self._last = entries[-1][0]
            return entries
        if self._backlog:  # ours from before a restart or a reconnect, a page at a time
            answer = self.redis.xreadgroup(group, self.options.consumer, {stream: self._last or "0"}, count=room)
            entries = list(answer[0][1]) if answer else []
            self._backlog = bool(entries)
            self._last = entries[-1][0] if entries else None
            return self._new_to_us(entries)
        if now >= self._next_claim:
            self._next_claim = now + max(0.05, self.options.claim_timeout / 4)
            claimed = self._claim(room)
            if claimed:
                return claimed
        answer = self.redis.xreadgroup(group, self.options.consumer, {stream: ">"}, count=room, block=int(BLOCK * 1000))
        return self._new_to_us(list(answer[0][1]) if answer else [])

    def tend(self, in_hand: str | None = None) -> float:
        """Commit what is due and, every second, look at the stream's end; returns the monotonic time."""
        self.commit()
        now = time.monotonic()
        if now >= self._next_stats:
            self._look_at_the_end(in_hand)
            self._next_stats = now + _STATS_EVERY
        return now

    def _claim(self, room: int) -> list[Entry]:
        """Entries a member has held past ``claim_timeout`` (it is gone), now ours."""
        answer = self.redis.xautoclaim(
            self.options.stream, self.group, self.options.consumer, int(self.options.claim_timeout * 1000), count=room
        )
        entries = self._new_to_us(list(answer[1]))
        self.claimed += len(entries)
        return entries

    def _new_to_us(self, entries: list[Entry]) -> list[Entry]:
        with self._lock:
            fresh = [entry for entry in entries if entry[0] not in self._held]  # not re-read, not re-claimed
            self._held.update(entry[0] for entry in fresh)
        return fresh

    def consumed(self, *entry_ids: str) -> None:
        """Mark entries done (committed by the next :meth:`commit`)."""
        with self._lock:
            self._done.extend(entry_ids)

    def commit(self) -> None:
        """Save the position / acknowledge the consumed entries; a failure is retried by the next call."""
        with self._lock:
            done = list(self._done)
            if not done:
                return
            try:
                if self.group:
                    self.redis.xack(self.options.stream, self.group, *done)
                elif self.options.name:
                    self.redis.set(self.position_key, done[-1])
            except self.errors as exc:
                self.commit_failures += 1
                log.debug("commit failed: %s", exc)
                return
            del self._done[: len(done)]
            self._held.difference_update(done)

    def _look_at_the_end(self, in_hand: str | None) -> None:
        """Lag behind the stream's newest entry and, in group mode, the group's pending entries."""
        try:
            info = self.redis.xinfo_stream(self.options.stream)
        except self.errors:
            return  # no stream yet
        newest = str(info["last-generated-id"])
        self._rewind_if_behind(newest)
        first = info.get("first-entry")
        oldest = str(first[0]) if first else newest  # from "0": the whole stream is behind us
        with self._lock:
            mine = in_hand or (self._done[-1] if self._done else None)
        if self.group:
            for group in self.redis.xinfo_groups(self.options.stream):
                if group["name"] == self.group:
                    self.pending = int(group["pending"])
                    lag = group.get("lag")
                    self.lag_entries = None if lag is None else int(lag)
                    mine = mine or str(group["last-delivered-id"])
        else:
            mine = mine or self._last
        self.lag_seconds = max(0, _ms(newest) - max(_ms(mine or newest), _ms(oldest) - 1)) / 1000.0

    def _rewind_if_behind(self, newest: str) -> None:
        """The stream's newest ID is behind our position: Redis came back with an older or empty
        data set (a lost AOF, a failover to a replica behind) on a clock behind the IDs we read.
        XREAD from our position would wait silently until the clock passes it, so we re-read the
        stream from its start: nothing lost, what we had read before is delivered again (at least
        once; a Client drops the identities it has seen). Counted (``rewinds``) and warned."""
        # Our position is read after ``newest``: entries added and read in between (another member,
        # or our own reader) would look "behind". So the newest ID is read again after the position:
        # it only ever grows, unless the data set really went back.
        if self.group:
            behind = [g for g in self.redis.xinfo_groups(self.options.stream)
                      if g["name"] == self.group and _id(str(g["last-delivered-id"])) > _id(newest)]  # fmt: skip
            if not behind:
                return
            position = str(behind[0]["last-delivered-id"])
            if not self._still_behind(position):
                return
            self.redis.xgroup_setid(self.options.stream, self.group, "0")
        else:
            if self._last is None or _id(self._last) <= _id(newest):
                return
            position = self._last
            if not self._still_behind(position):
                return
            self._last = "0-0"
        self.rewinds += 1
        log.warning("redis stream %s went back: its newest ID %s is behind our position %s (Redis restarted with "
                    "older data?); reading it again from its start", self.options.stream, newest, position)  # fmt: skip

    def _still_behind(self, position: str) -> bool:
        try:
            newest = str(self.redis.xinfo_stream(self.options.stream)["last-generated-id"])
        except self.errors:
            return True  # the stream is gone meanwhile: it went back
        return _id(position) > _id(newest)

    def close(self) -> None:
        self.redis.close()


__all__ = ["BLOCK", "OPTIONS", "READ_BUDGET", "Entry", "ReaderOptions", "StreamCursor"]
