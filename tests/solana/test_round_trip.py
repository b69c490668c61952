"""``Event.from_dict(e.to_dict()) == e`` for every kind from every provider, through every path that
stores or carries events: JSONL (the file sink, ``pumpsync stream``), SQLite (the sink's ``data``
column), Redis Streams (the sink's ``event`` field) and replay (which reads JSONL and SQLite back).

Events: hypothesis-built ones of every kind with every field (the simulator's and the providers'
field shapes), the real PumpPortal frames and the real Solana transaction of the fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumpsync.daemon.sinks.base import event_json
from pumpsync.daemon.sinks.redis import entry_fields
from pumpsync.daemon.sinks.sqlite import SqliteSink
from pumpsync.events import KINDS, Event
from pumpsync.providers.pumpportal import PumpPortal
from pumpsync.providers.replay import Recording, Source
from pumpsync.providers.solana import compile_filters as solana_filters
from pumpsync.providers.solana import decode_logs

FIXTURES = Path(__file__).parent / "fixtures"
PP_CAPTURED = Path(__file__).parents[1] / "pumpportal" / "captured_frames.txt"
PROVIDERS = ("openpump", "anaxer", "pumpportal", "solana", "redis", "replay")

keys = st.text("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", min_size=32, max_size=44)
floats = st.floats(allow_nan=False, allow_infinity=False)
ints = st.integers(min_value=0, max_value=2**64 - 1)  # raw u64 amounts
columns = st.integers(min_value=0, max_value=2**53)  # slots and epoch-ms times (SQLite columns, bounded upstream)
json_leaf = st.none() | st.booleans() | ints | floats | st.text(max_size=20)
raws = st.dictionaries(st.text(max_size=10), json_leaf | st.lists(json_leaf, max_size=3), max_size=6)

_OPTIONAL: dict[str, Any] = {
    "channel": st.none() | st.sampled_from(["trades", "creations", "graduations", "newTokens"]),
    "side": st.none() | st.sampled_from(["buy", "sell"]),
    "trader": st.none() | keys,
    "creator": st.none() | keys,
    "name": st.none() | st.text(max_size=30),  # real names carry NUL bytes
    "symbol": st.none() | st.text(max_size=10),
    "uri": st.none() | st.text(max_size=40),
    "image": st.none() | st.text(max_size=40),
    "description": st.none() | st.text(max_size=40),
    "pool": st.none() | st.sampled_from(["pump", "bonk"]),
    "venue": st.none() | st.sampled_from(["curve", "pumpswap"]),
}


@st.composite
def events(draw: st.DrawFn) -> Event:
    fields: dict[str, Any] = {
        "kind": draw(st.sampled_from(KINDS)),
        "provider": draw(st.sampled_from(PROVIDERS)),
        "mint": draw(st.none() | keys),
        "signature": draw(st.none() | keys),
        "slot": draw(st.none() | columns),
        "timestamp": draw(st.none() | columns),
        "received_at": draw(columns),
        "connection": draw(st.integers(0, 16)),
        "backfill": draw(st.booleans()),
        "raw": draw(raws),
    }
    for name in Event._fields:
        if name in fields:
            continue
        strategy = _OPTIONAL.get(name, st.none() | floats)
        fields[name] = draw(strategy)
    return Event(**fields)


def _through_every_path(batch: list[Event], tmp: Path) -> list[list[Event]]:
    """The batch as each path gives it back: JSON of to_dict, Redis entry, JSONL replay, SQLite replay."""
    direct = [Event.from_dict(json.loads(event_json(e))) for e in batch]
    redis = [Event.from_dict(json.loads(dict(zip(*[iter(entry_fields(e))] * 2, strict=True))["event"])) for e in batch]
    jsonl = tmp / "events.jsonl"
    jsonl.write_text("".join(event_json(e) + "\n" for e in batch), encoding="utf-8")
    from_jsonl = list(Recording(Source("jsonl", jsonl)))
    db = tmp / f"events-{len(list(tmp.iterdir()))}.db"
    sink = SqliteSink("rt", db)
    sink.open()
    try:
        sink.write(batch)
    finally:
        sink.close_resources()
    from_sqlite = list(Recording(Source("sqlite", db)))
    return [direct, redis, from_jsonl, from_sqlite]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(events(), min_size=1, max_size=5, unique_by=lambda e: json.dumps(e.to_dict(), sort_keys=True)))
def test_every_event_round_trips_through_every_path(tmp_path: Path, batch: list[Event]) -> None:
    for e in batch:
        assert Event.from_dict(e.to_dict()) == e
    direct, redis, from_jsonl, from_sqlite = _through_every_path(batch, tmp_path)
    assert direct == batch and redis == batch and from_jsonl == batch
    # SQLite keeps one row per identity: every row read back is one of the batch, exactly.
    assert from_sqlite and all(e in batch for e in from_sqlite)


def _real_events() -> list[Event]:
    out: list[Event] = []
    tx = json.loads((FIXTURES / "raw_create_tx_from_gettransaction.json").read_text())
    logs = tx["result"]["meta"]["logMessages"] if "result" in tx else tx["meta"]["logMessages"]
    outputs: list[Any] = []
    every = solana_filters({c: {} for c in ("creations", "trades", "graduations")})
    decode_logs(logs, "sig", 1, 2, 0, False, every, outputs)
    out += [o for o in outputs if isinstance(o, Event)]
    from pumpsync.providers.base import Subscription

    subs = [
        Subscription("token_trades", {"keys": ["5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump"]}),
        Subscription("new_tokens", {}),
        Subscription("migrations", {}),
    ]
    pp = PumpPortal(0, subs)
    for line in PP_CAPTURED.read_text().splitlines():
        if line.strip():
            out += [o for o in pp.receive(line, 1_700_000_000_000) if isinstance(o, Event)]
    return out


def test_real_fixtures_round_trip(tmp_path: Path) -> None:
    real = _real_events()
    kinds = {e.kind for e in real}
    assert {"new_token", "trade"} <= kinds and any(e.creator for e in real if e.kind == "trade")
    for e in real:
        assert Event.from_dict(e.to_dict()) == e
    direct, redis, from_jsonl, from_sqlite = _through_every_path(real, tmp_path)
    assert direct == real and redis == real and from_jsonl == real
    assert from_sqlite and all(e in real for e in from_sqlite)
