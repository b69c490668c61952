"""The ``candles`` sink: the market view's closed candles, to SQLite or JSON Lines.

``--sink candles:PATH`` (or ``[[sinks]] type = "candles"``, ``path = ...``): a ``candles`` table of
its own in a SQLite file (``.db``, ``.sqlite``, ``.sqlite3``; see :data:`~pumpsync.market.CANDLES_SCHEMA`,
idempotent by (mint, interval, start_ms)), else JSON Lines of kind ``"candle"`` appended to PATH.
It is a sink like the others: its own thread and buffer, so the dispatcher never waits for it. It feeds
the events to a :class:`~pumpsync.Market` of its own and writes each candle when it closes (and again,
with a higher ``revision``, when a late trade changes it).

A candle is written whole or not at all: a candle that began before this sink's first event (the
daemon started, or restarted, in the middle of its interval) is not written, so a restart never
replaces a stored candle by a partial one; the candles still open at shutdown are not written either.
Candles that fail to be written are kept (up to ``candle_queue``) and written with the next batch.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from pumpsync.daemon.sinks.base import Sink
from pumpsync.events import Event
from pumpsync.market._candles import Candle
from pumpsync.market._market import Market
from pumpsync.market._store import candle_json, store_candles
from pumpsync.market._token import event_ms

_SQLITE = (".db", ".sqlite", ".sqlite3")
CANDLE_QUEUE = 100_000


class CandleSink(Sink):
    kind = "candles"

    def __init__(self, name: str, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(name, **options)
        self.path = Path(path)
        self.market = Market(candle_queue=CANDLE_QUEUE)
        self._since: int | None = None  # the first event's time: candles from before it are partial
        self._unwritten: list[Candle] = []
        self._db: sqlite3.Connection | None = None
        self.candles_written = 0
        self.candles_skipped = 0  # partial (began before the first event)

    def describe(self) -> str:
        return f"candles {self.path}"

    def open(self) -> None:
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"cannot open {self.path}: the directory {self.path.parent} does not exist")
        if self.path.suffix in _SQLITE and self._db is None:
            db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            self._db = db
        elif self.path.suffix not in _SQLITE:
            self.path.touch()

    def write(self, batch: list[Event]) -> int:
        if self._since is None and batch:
            self._since = min(event_ms(e) for e in batch)
        self.market.feed(batch)
        since = self._since or 0
        for candle in self.market.closed_candles():
            if candle.start_ms < since:
                self.candles_skipped += 1
            else:
                self._unwritten.append(candle)
        del self._unwritten[: max(0, len(self._unwritten) - CANDLE_QUEUE)]
        if self._unwritten:
            self._store(self._unwritten)  # raises: kept for the next batch
            self.candles_written += len(self._unwritten)
            self._unwritten = []
        return len(batch)

    def _store(self, candles: list[Candle]) -> None:
        if self.path.suffix in _SQLITE:
            if self._db is None:
                self.open()
            assert self._db is not None
            store_candles(self._db, candles)
        else:
            with self.path.open("a", encoding="utf-8") as out:
                out.write("".join(candle_json(c) + "\n" for c in candles))

    def close_resources(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
