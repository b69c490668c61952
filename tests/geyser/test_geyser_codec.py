"""The client's codec against the simulator's independent writer, and against hostile bytes."""

from __future__ import annotations

import random

import pytest

from pumpsync.providers.base import Fatal, Malformed, Reconnect, Reply, Subscribed, Subscription
from pumpsync.providers.geyser import _proto as proto
from pumpsync.providers.geyser._status import status_frame
from pumpsync.providers.geyser.dialect import Geyser
from pumpsync.simulator import geyser_wire as wire
from pumpsync.simulator.geyser_wire import read_request

PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
AMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"


def _dialect(commitment: str = "confirmed") -> Geyser:
    return Geyser(0, [Subscription("trades"), Subscription("creations")], commitment=commitment)


def test_the_request_reads_back_in_the_servers_reader() -> None:
    request = read_request(proto.subscribe_request((PUMP, AMM), "processed", from_slot=123))
    assert request.programs == [PUMP, AMM] and request.commitment == 0 and request.from_slot == 123
    assert request.slots and request.ping is None
    ping = read_request(proto.ping_request(7))
    assert ping.ping == 7 and not ping.filters  # a ping alone never replaces the filters


def test_updates_from_the_servers_writer() -> None:
    assert proto.decode_update(wire.ping_update()) == proto.Ping()
    assert proto.decode_update(wire.pong_update(9)) == proto.Pong(9)
    assert proto.decode_update(wire.slot_update(5, 6, 4)) == proto.Slot(5, 6, 4)


def test_a_ping_is_answered_with_a_ping_only_request_and_the_pong_makes_channels_live() -> None:
    dialect = _dialect()
    _, ping = dialect.on_open()
    out = dialect.receive(wire.ping_update(), 0)
    assert len(out) == 1 and isinstance(out[0], Reply)
    assert not read_request(out[0].text).filters  # type: ignore[arg-type]
    pong = read_request(ping).ping  # type: ignore[arg-type]
    assert pong is not None
    assert {o.channel for o in dialect.receive(wire.pong_update(pong), 0) if isinstance(o, Subscribed)} == {
        "trades",
        "creations",
    }


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00",  # field 0
        b"\x22\xff\xff\xff\xff\x0f",  # a length past the end
        b"\x22" + b"\xff" * 11,  # a varint too long
        b"\x23",  # wire type 3 (groups)
        b"\x0a\x03abc",  # only filters: no update
        b"\x22\x02\x0a\x00",  # a transaction without its info
        b"\x22\x04\x0a\x02\x0a\x00",  # a signature of 0 bytes
    ],
)
def test_hostile_messages_are_one_malformed_each(payload: bytes) -> None:
    out = _dialect().receive(payload, 0)
    assert len(out) == 1 and isinstance(out[0], Malformed)


def test_random_bytes_never_raise_anything_but_a_count() -> None:
    rng = random.Random(7)
    dialect = _dialect()
    base = wire.slot_update(10, 1)
    for _ in range(3000):
        data = bytearray(base if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 64)))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for item in dialect.receive(bytes(data), 0):
            assert not isinstance(item, Malformed) or item.reason != "decode_error"  # our decoder raised


def test_too_many_account_keys_is_refused() -> None:
    key = b"\x01" * 32
    message = [(2, key)] * (proto.MAX_KEYS + 1)
    info = [(1, b"\x02" * 64), (3, [(2, message)])]
    out = _dialect().receive(wire.write([(4, [(1, info), (2, 5)])]), 0)
    assert out == [Malformed("too_many_keys")]


def test_a_slot_past_a_signed_64_bit_integer_is_refused() -> None:
    """uint64 on the wire; none that large is real, and SQLite (the daemon's sink) cannot store it."""
    assert _dialect().receive(wire.slot_update(2**63, 1), 0) == [Malformed("slot_range")]
    info = [(1, b"\x02" * 64), (3, [(2, [(2, b"\x01" * 32)])])]
    assert _dialect().receive(wire.write([(4, [(1, info), (2, 2**64 - 1)])]), 0) == [Malformed("slot_range")]
    assert not any(isinstance(o, Malformed) for o in _dialect().receive(wire.slot_update(2**63 - 1, 1), 0))


def test_statuses() -> None:
    assert isinstance(_dialect().receive(status_frame(16, "bad token"), 0)[0], Fatal)
    limited = _dialect().receive(status_frame(8, "too many requests"), 0)[0]
    assert isinstance(limited, Reconnect) and limited.rate_limited
    big = _dialect().receive(status_frame(8, "Received message larger than max (9 vs. 4)"), 0)
    assert big[0] == Malformed("oversized")
    dialect = _dialect()
    dialect.from_slot = 100
    refused = dialect.receive(status_frame(11, "broadcast from 100 is not available, last available: 140"), 0)
    assert isinstance(refused[0], Reconnect) and dialect.first_available == 140
    after = _dialect()
    after.resume(dialect)
    assert after.from_slot == 148 and after.after_refusal


def test_a_dead_slot_drops_what_it_carried_at_processed() -> None:
    from pumpsync.simulator._solana_tx import Recipe, render
    from pumpsync.simulator.market import Market

    market = Market(3)
    events = []
    while not events:
        events = [e for e in market.step("launch")]
    launch = events[0]
    recipe = Recipe("launch", launch.signature, 50, 0, launch=launch)
    rendered = render(recipe)
    update = wire.transaction_update(
        recipe.signature, 50, rendered.keys, rendered.instructions, rendered.inner, rendered.logs, False, loaded=2
    )
    dialect = _dialect("processed")
    assert not [o for o in dialect.receive(update, 0) if type(o).__name__ == "Event"]  # held for its slot
    dropped = dialect.receive(wire.slot_update(50, 6), 0)
    assert dropped and all(o.reason == "dead_slot" for o in dropped)  # type: ignore[union-attr]
    kept = _dialect("processed")
    kept.receive(update, 0)
    released = kept.receive(wire.slot_update(50, 0), 0)
    assert [o.kind for o in released] == ["new_token"] or "new_token" in [getattr(o, "kind", None) for o in released]


def test_events_held_at_processed_when_a_session_ends_are_delivered_by_the_replay() -> None:
    from pumpsync.simulator._solana_tx import Recipe, render
    from pumpsync.simulator.market import Market

    market = Market(5)
    events = []
    while not events:
        events = list(market.step("launch"))
    launch = events[0]
    recipe = Recipe("launch", launch.signature, 70, 0, launch=launch)
    rendered = render(recipe)
    update = wire.transaction_update(
        recipe.signature, 70, rendered.keys, rendered.instructions, rendered.inner, rendered.logs, False
    )
    first = _dialect("processed")
    first.receive(update, 0)  # held: its slot has no status yet, and then the session ends
    second = _dialect("processed")
    second.resume(first)
    second.receive(update, 0)  # the replay brings it again: not a duplicate, it was never delivered
    released = second.receive(wire.slot_update(70, 0), 0)
    assert "new_token" in [getattr(o, "kind", None) for o in released]
