"""Candles for sinks: a SQLite table of their own and JSON lines of their own kind.

Idempotent like the events table: (mint, interval, start_ms) is the key; a candle replaces the stored
one unless that one has a higher revision (a late trade's revision wins over the first close, never the
reverse), so writing the same candles again, or after a restart, changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from pumpsync.market._candles import Candle

CANDLES_SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    mint       TEXT    NOT NULL,
    interval   TEXT    NOT NULL,  -- '1s', '1m', '5m'
    start_ms   INTEGER NOT NULL,  -- event time, epoch ms
    open       REAL    NOT NULL,  -- SOL per whole token
    high       REAL    NOT NULL,
    low        REAL    NOT NULL,
    close      REAL    NOT NULL,
    volume_sol REAL    NOT NULL,
    buys       INTEGER NOT NULL,
    sells      INTEGER NOT NULL,
    revision   INTEGER NOT NULL,
    PRIMARY KEY (mint, interval, start_ms)
);
"""
_UPSERT = """
INSERT INTO candles (mint, interval, start_ms, open, high, low, close, volume_sol, buys, sells, revision)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (mint, interval, start_ms) DO UPDATE SET
    open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
    volume_sol = excluded.volume_sol, buys = excluded.buys, sells = excluded.sells, revision = excluded.revision
WHERE excluded.revision >= candles.revision
"""


def store_candles(db: sqlite3.Connection, candles: Iterable[Candle]) -> None:
    """Write closed candles in one transaction (creating the table if needed)."""
    rows = [
        (c.mint, c.interval, c.start_ms, c.open, c.high, c.low, c.close, c.volume_sol, c.buys, c.sells, c.revision)
        for c in candles
    ]
    with db:
        db.executescript(CANDLES_SCHEMA)
        db.executemany(_UPSERT, rows)


def load_candles(db: sqlite3.Connection, mint: str, interval: str) -> list[Candle]:
    query = (
        "SELECT open, high, low, close, volume_sol, buys, sells, revision, start_ms FROM candles"
        " WHERE mint = ? AND interval = ? ORDER BY start_ms"
    )
    return [
        Candle(mint, interval, start, o, h, low, c, v, b, s, True, r)
        for o, h, low, c, v, b, s, r, start in db.execute(query, (mint, interval))
    ]


def candle_json(candle: Candle) -> str:
    """One JSONL line (without the newline): ``{"kind": "candle", ...}``, next to the events' lines."""
    return json.dumps(candle.to_dict(), separators=(",", ":"), allow_nan=False)
