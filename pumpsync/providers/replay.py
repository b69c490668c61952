"""Replay: recorded events (the JSONL and SQLite sinks' files) as a source like any provider.

``pumpsync.connect("replay", url="file:events.jsonl", speed=10)`` delivers the recorded
:class:`~pumpsync.Event` objects in recorded order, paced as they were received (``speed``
times faster; ``speed=0``: as fast as the consumer takes them), so that a bot's code runs
unchanged on live or recorded data.

URLs: ``file:PATH`` (JSON Lines: one ``Event.to_dict()`` per line, as ``pumpsync stream
--format jsonl``, the daemon's ``jsonl:`` sink and ``pumpsync demo --record`` write them) and
``sqlite:PATH`` (the daemon's ``sqlite:`` sink); ``file:`` with a ``.db``/``.sqlite``/``.sqlite3``
name is read as SQLite too. ``since``: a slot, or an epoch time in milliseconds (any value
of at least 10^12): events before it are skipped.

This module reads and paces; the transport at the end plugs it into a client's session loop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pumpsync.errors import ConfigurationError
from pumpsync.events import Event

log = logging.getLogger("pumpsync.replay")

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
EPOCH_MS_FROM = 10**12  # a ``since`` this large is a time (epoch ms), not a slot
URL_SCHEMES = ("file", "sqlite")


@dataclass(frozen=True)
class Source:
    """Where a recording is: its format and path."""

    form: str  # "jsonl" or "sqlite"
    path: Path

    @classmethod
    def parse(cls, url: str) -> Source:
        """``file:PATH``, ``file://PATH``, ``sqlite:PATH``; raises ``ConfigurationError("url", ...)``."""
        scheme, sep, rest = url.partition(":")
        if not sep or scheme not in URL_SCHEMES or not rest:
            raise ConfigurationError("url", f"{url!r} is not a recording (file:PATH or sqlite:PATH)")
        if rest.startswith("//"):
            rest = rest[2:]
            if not rest.startswith("/"):  # file://host/path: only the local host
                host, _, tail = rest.partition("/")
                if host not in ("", "localhost"):
                    raise ConfigurationError("url", f"{url!r}: only local files can be replayed")
                rest = "/" + tail
        path = Path(rest).expanduser()
        form = "sqlite" if scheme == "sqlite" or path.suffix.lower() in SQLITE_SUFFIXES else "jsonl"
        if not path.is_file():
            raise ConfigurationError("url", f"{str(path)!r} is not a readable file")
        return cls(form, path)


def _wanted(since: int | None) -> Callable[[Event], bool]:
    if since is None:
        return lambda event: True
    if since >= EPOCH_MS_FROM:
        return lambda event: event.received_at >= since
    return lambda event: event.slot is not None and event.slot >= since


class Recording:
    """The events of one file, in recorded order, read lazily (a recording may be large)."""

    def __init__(self, source: Source, since: int | None = None) -> None:
        self.source = source
        self.since = since
        self.skipped = 0  # lines or rows that are not events (counted, logged once)

    def __iter__(self) -> Iterator[Event]:
        wanted = _wanted(self.since)
        rows = self._sqlite() if self.source.form == "sqlite" else self._jsonl()
        for where, data in rows:
            try:
                event = Event.from_dict(data)
            except (TypeError, ValueError) as exc:
                self._skip(where, str(exc))
                continue
            if wanted(event):
                yield event

    def _skip(self, where: str, why: str) -> None:
        self.skipped += 1
        if self.skipped == 1:
            log.warning("replay: %s %s is not an event (%s); skipping such records", self.source.path, where, why)

    def _jsonl(self) -> Iterator[tuple[str, dict[str, Any]]]:
        with self.source.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError as exc:
                    self._skip(f"line {number}", f"not JSON: {exc}")
                    continue
                if not isinstance(data, dict):
                    self._skip(f"line {number}", "not a JSON object")
                    continue
                yield f"line {number}", data

    def _sqlite(self) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            db = sqlite3.connect(f"{self.source.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise ConfigurationError("url", f"cannot open {self.source.path}: {exc}") from None
        try:
            try:
                # The sink's table: ``data`` is Event.to_dict(); ``channel`` is kept even where ``data`` lacks it.
                rows = db.execute("SELECT id, data, channel FROM events ORDER BY id")
            except sqlite3.Error as exc:
                raise ConfigurationError("url", f"{self.source.path} is not a pumpsync recording: {exc}") from None
            for row_id, text, channel in rows:
                try:
                    data = json.loads(text)
                except (TypeError, ValueError) as exc:
                    self._skip(f"row {row_id}", f"not JSON: {exc}")
                    continue
                if isinstance(data, dict):
                    data.setdefault("channel", channel)
                    yield f"row {row_id}", data
                else:
                    self._skip(f"row {row_id}", "not a JSON object")
        finally:
            db.close()


class Pacer:
    """When to deliver each event: at the recorded pace divided by ``speed`` (0: at once).

    The first event sets the origin; each later one is due ``(received_at - first) / speed``
    seconds after the replay's start. A consumer that falls behind is not made to wait more.
    """

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ConfigurationError("speed", "must be >= 0 (0: as fast as possible)")
        self.speed = speed
        self.clock = clock
        self._origin: tuple[float, int] | None = None

    def due(self, event: Event) -> float:
        """The clock reading at which ``event`` is due."""
        if self._origin is None:
            self._origin = (self.clock(), event.received_at)
        if self.speed == 0:
            return self._origin[0]
        start, first = self._origin
        return start + max(0, event.received_at - first) / 1000.0 / self.speed


def replay(
    url: str, speed: float = 1.0, since: int | None = None, stop: threading.Event | None = None
) -> Iterator[Event]:
    """The recorded events of ``url``, paced; ends at the end of the file or once ``stop`` is set."""
    stop = stop or threading.Event()
    pacer = Pacer(speed)
    for event in Recording(Source.parse(url), since):
        wait = pacer.due(event) - pacer.clock()
        if (wait > 0 and stop.wait(wait)) or stop.is_set():
            return
        yield event


__all__ = ["Pacer", "Recording", "Source", "replay"]
