"""SQLite: one row per event, idempotent on the event's identity (a restart never duplicates rows).

WAL mode lets readers query the file while the daemon writes. ``identity`` is a SHA-256 of
the provider and :attr:`Event.identity`, or of the raw JSON for events without one.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from pumpsync.daemon.sinks.base import Sink, event_json, identity_key
from pumpsync.events import Event

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    identity    TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    channel     TEXT,
    mint        TEXT,
    signature   TEXT,
    slot        INTEGER,
    timestamp   INTEGER,          -- provider time, epoch ms
    received_at INTEGER NOT NULL, -- local time, epoch ms
    connection  INTEGER NOT NULL,
    backfill    INTEGER NOT NULL,
    side        TEXT,
    sol_amount  REAL,
    trader      TEXT,
    data        TEXT    NOT NULL  -- the event as JSON (Event.to_dict())
);
CREATE INDEX IF NOT EXISTS events_mint ON events (mint);
CREATE INDEX IF NOT EXISTS events_slot ON events (slot);
"""
INSERT = """
INSERT OR IGNORE INTO events (identity, kind, provider, channel, mint, signature, slot, timestamp,
                              received_at, connection, backfill, side, sol_amount, trader, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def _row(event: Event) -> tuple[Any, ...]:
    return (
        identity_key(event), event.kind, event.provider, event.channel, event.mint, event.signature, event.slot,
        event.timestamp, event.received_at, event.connection, int(event.backfill), event.side, event.sol_amount,
        event.trader, event_json(event),
    )  # fmt: skip


class SqliteSink(Sink):
    kind = "sqlite"
    attempts = 5  # a transaction either commits whole or not at all: retrying is safe

    def __init__(self, name: str, path: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(name, **options)
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self.inserted = 0  # rows that were new (the rest were already there)
        self._encoded: tuple[list[Event] | None, list[tuple[Any, ...]]] = (None, [])

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def open(self) -> None:
        if not self.path.parent.is_dir():  # a typo'd path must not become a tree of new directories
            raise FileNotFoundError(f"cannot open {self.path}: the directory {self.path.parent} does not exist")
        # Opened here so a bad path fails at start-up; used only by the sink's thread afterwards.
        db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.commit()
        except sqlite3.Error:
            db.close()
            raise
        self._db = db

    def write(self, batch: list[Event]) -> int:
        if self._db is None:
            self.open()
        db = self._db
        assert db is not None
        if self._encoded[0] is not batch:  # a retry reuses the rows: a bad event is counted once
            self._encoded = (batch, list(self.encode_each(batch, _row)))
        rows = self._encoded[1]
        with db:  # one transaction per batch: commit, or roll back and retry the whole batch
            before = db.total_changes
            db.executemany(INSERT, rows)
            self.inserted += db.total_changes - before
        self._encoded = (None, [])
        return len(rows)

    def stored_positions(self, provider: str) -> dict[str, dict[str, Any]]:
        """Per channel, the newest slot stored for ``provider`` and its events' identities (as
        :meth:`Positions.state` gives them): exact, also after ``kill -9``."""
        if self._db is None:
            self.open()
        db = self._db
        assert db is not None
        newest = "SELECT channel, MAX(slot) FROM events WHERE provider = ? AND channel IS NOT NULL GROUP BY channel"
        ids = "SELECT identity FROM events WHERE provider = ? AND channel = ? AND slot = ? LIMIT ?"
        return {
            channel: {"slot": int(slot), "ids": [row[0] for row in db.execute(ids, (provider, channel, slot, 10_000))]}
            for channel, slot in db.execute(newest, (provider,)).fetchall()
            if slot is not None
        }

    def close_resources(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.close()
