"""``Delivery.deliver_all``'s batch path (nothing races, nothing holds) against the event-by-event one.

The same events, duplicates, slots, implausible delays and an overflow, through both: the queue
and every counter must come out the same.
"""

from __future__ import annotations

from typing import Any

from pumpsync._delivery import Delivery
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync.events import NEW_TOKEN, TRADE, Event


def _trade(n: int, *, slot: int | None = None, timestamp: int | None = 1_000, received_at: int = 1_500,
           connection: int = 0, channel: str | None = None) -> Event:  # fmt: skip
    return Event(TRADE, "openpump", f"mint{n % 3}", f"sig{n}", slot, timestamp, received_at, connection, False,
                 {"n": n}, channel, side="buy", trader=f"t{n}")  # fmt: skip


def _batches() -> list[list[Event]]:
    a = [_trade(n) for n in range(50)]
    b = [_trade(n) for n in range(40, 90)]  # ten duplicates of the first batch
    c = [_trade(n, slot=100 + n, channel="trades", connection=1) for n in range(90, 120)]
    d = [_trade(200, timestamp=10_000_000), _trade(201, timestamp=-5_000_000), _trade(202, timestamp=None)]
    e = [_trade(300 + n, received_at=1_000 + 700 * n) for n in range(20)]  # delays across the buckets
    # kinds and connections change inside one batch (counted by runs on the batch path)
    f = [_trade(400 + n, connection=n % 3 // 2) for n in range(12)]
    f[3:3] = [
        Event(NEW_TOKEN, "openpump", f"new{n}", f"launch{n}", None, 1_000, 1_200, n % 2, False, {}) for n in range(3)
    ]
    return [a, b, c, d, e, f, [], [_trade(0)]]


def _state(delivery: Delivery) -> dict[str, Any]:
    stats = delivery.stats
    items = []
    while delivery.queue.qsize():
        items.append(delivery.queue.get_nowait())
    return {"items": [i.signature for i in items], "snapshot": _timeless(stats.snapshot()),
            "delay": (stats.delay.counts, stats.delay.count, round(stats.delay.sum, 9)),
            "implausible": dict(stats.implausible), "last_slot": delivery.last_slot, "newest": delivery.newest,
            "first": [c.first_deliveries for c in stats.connections], "duplicates": stats.duplicates,
            "dropped": stats.dropped}  # fmt: skip


def _timeless(value: Any) -> Any:
    """A snapshot without its clock readings (the two deliveries were made at different times)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith(("_since", "_at", "uptime_s"))}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _new(capacity: int) -> Delivery:
    return Delivery(ClientStats("openpump", capacity, [ConnectionStats(0), ConnectionStats(1)]), capacity, 1_000)


def test_batch_path_matches_event_by_event() -> None:
    for capacity in (10_000, 60):  # 60: the queue overflows (the batch path then goes event by event)
        batched, single = _new(capacity), _new(capacity)
        for batch in _batches():
            batched.deliver_all(batch)
            for event in batch:
                single.deliver(event)
        got, want = _state(batched), _state(single)
        assert got["items"] and got == want
        if capacity == 60:
            assert got["dropped"] > 0
        else:
            assert got["duplicates"] == 11 and got["implausible"] == {"future": 1, "past": 1}
            assert got["snapshot"]["events"] == {"trade": 155, "new_token": 3}


def test_batch_path_takes_any_iterable() -> None:
    delivery = _new(100)
    delivery.deliver_all(_trade(n) for n in range(5))
    assert _state(delivery)["items"] == [f"sig{n}" for n in range(5)]
