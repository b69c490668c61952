"""Every value from outside typed and bounded (issue 22, item 7): each dialect fuzzed with real
frames whose fields are replaced by hostile values, then one hostile value over a real socket.

The contract: ``receive`` never raises and never needs its safety net (no ``decode_error``: the
field readers themselves refuse what is not typed and bounded); a frame that yields no event is
counted (``Malformed`` or ``Dropped``); every event is well typed (finite numbers, bounded
strings, amounts >= 0, PumpPortal mints that are addresses).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hardening_support import RawWs, RawWsServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pumpsync._bounds import INT_MAX, INT_MIN, MAX_TEXT, is_address
from pumpsync.events import KINDS, TRADE, Event
from pumpsync.providers.anaxer import DOCUMENT, V1, Anaxer
from pumpsync.providers.base import Dialect, Dropped, Malformed, Notice, Subscribed, Subscription
from pumpsync.providers.openpump import OpenPump
from pumpsync.providers.pumpportal import PumpPortal
from pumpsync.providers.redis import RedisDialect
from pumpsync.providers.replay import Replay
from tests.conftest import wait_until

AT = 1_700_000_000_000
MINT = "8yZ1rj5nHbUFuCbnoowE6rHLZYiuTe1tbxEskgzUpump"
WALLET = "3JQvkiF2GKfca3ggMPRwTHmzvnj6emReuSFwSrBBonp5"
SIG = "5uEezmZnrgk3a1g92qQ3CmbkjtE7j5xV2rbFy43Lt8WeT1MPRjqNLK7g9hzQHZv6kxxLeyujDdX6K69A9LhVpnNa"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HUGE = 10**400  # float(HUGE) raises OverflowError

# ---------------------------------------------------------------- the dialects and their real frames


def _pumpportal() -> Dialect:
    subs = [
        Subscription("new_tokens"),
        Subscription("migrations"),
        Subscription("token_trades", {"keys": [MINT]}),
        Subscription("account_trades", {"keys": [WALLET]}),
    ]
    return PumpPortal(0, subs)


_RECORD = Event(TRADE, "openpump", MINT, SIG, 5, AT, AT, 0, False, {}, "trades", "buy", 1.0, 10.0, WALLET).to_dict()

DIALECTS: dict[str, tuple[Callable[[], Dialect], list[dict[str, Any]]]] = {
    "openpump": (
        lambda: OpenPump(0, []),
        [
            {"type": "buy", "mint": MINT, "signature": SIG, "solAmount": 1.0, "tokenAmount": 10.0, "timestamp": AT},
            {"type": "new_token", "mint": MINT, "signature": SIG, "name": "N", "bondingCurve": {"progress": 1.0}},
        ],
    ),
    "anaxer-v1": (
        lambda: Anaxer(0, [Subscription(ch) for ch in ("trades", "creations", "graduations", "prices")], form=V1),
        [
            {
                "v": 1,
                "type": "trade",
                "channel": "trades",
                "data": {"signature": SIG, "mint": MINT, "slot": 5, "side": "buy", "solAmount": "1.5"},
            },
            {"v": 1, "type": "price", "channel": "prices", "data": {"mint": MINT, "price": {"sol": 1, "usd": 2}}},
        ],
    ),
    "anaxer-document": (
        lambda: Anaxer(0, [Subscription("trades")], form=DOCUMENT),
        [{"signature": SIG, "mint": MINT, "slot": 5, "swap": {"from": {"mint": "So1", "uiAmount": 1}, "to": {}}}],
    ),
    "pumpportal": (
        _pumpportal,
        [
            {
                "txType": "buy",
                "mint": MINT,
                "signature": SIG,
                "traderPublicKey": WALLET,
                "solAmount": 1.0,
                "tokenAmount": 10.0,
                "marketCapSol": 30.0,
                "pool": "pump",
            },
            {
                "txType": "create",
                "mint": MINT,
                "signature": SIG,
                "traderPublicKey": WALLET,
                "initialBuy": 5,
                "solAmount": 1,
                "vSolInBondingCurve": 31,
                "vTokensInBondingCurve": 1e9,
                "name": "N",
                "pool": "pump",
            },
            {"txType": "migrate", "mint": MINT, "signature": SIG, "pool": "pump-amm"},
            {"message": "Successfully subscribed to keys."},
        ],
    ),
    "redis": (lambda: RedisDialect(0, []), [_RECORD]),
    "replay": (lambda: Replay(0, []), [_RECORD]),
}

# ---------------------------------------------------------------- hostile values

SCALARS = st.one_of(
    st.sampled_from([HUGE, -HUGE, 2**63, -(2**63) - 1, 2**64, -1, -1.5, 0, math.nan, math.inf, -math.inf, 1e308]),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "NaN", "1e999", "-5", "9" * 500, "x" * (MAX_TEXT + 1)]),
    st.sampled_from([True, False, None, "123456789", "2024-01-01T00:00:00Z", MINT + "x", "So1", "pump"]),
    st.integers(),
    st.floats(),
    st.text(max_size=50),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def encode(obj: Any) -> bytes:
    """JSON as a hostile server writes it: NaN/Infinity tokens, integers of any length."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def check(dialect: Dialect, name: str, payload: bytes) -> list[Any]:
    outputs = dialect.receive(payload, AT)
    assert isinstance(outputs, list) and outputs, "every frame yields an output (at least a count)"
    assert Malformed("decode_error") not in outputs, "the field readers must refuse it, not the safety net"
    events = [o for o in outputs if isinstance(o, Event)]
    if not events:
        assert any(isinstance(o, (Malformed, Dropped, Notice, Subscribed)) for o in outputs) or outputs == [], outputs
    for event in events:
        check_event(event, name)
    return outputs


def check_event(event: Event, dialect: str) -> None:
    assert event.kind in KINDS
    for key, value in event._asdict().items():
        if key == "raw":
            assert type(value) is dict
        elif isinstance(value, bool):
            assert key == "backfill"
        elif isinstance(value, int):
            assert INT_MIN <= value <= INT_MAX, (key, value)
        elif isinstance(value, float):
            assert math.isfinite(value), (key, value)
        elif isinstance(value, str):
            assert len(value) <= MAX_TEXT, key
        else:
            assert value is None, (key, value)
    if event.slot is not None:
        assert event.slot >= 0
    if dialect == "pumpportal" and event.kind != "unknown":
        assert event.mint is not None and is_address(event.mint)
        for key in ("sol_amount", "token_amount", "initial_buy_sol", "initial_buy_tokens", "virtual_sol_reserves"):
            value = getattr(event, key)
            assert value is None or value >= 0, (key, value)
    json.dumps({k: v for k, v in event.to_dict().items() if k != "raw"}, allow_nan=False)


@pytest.mark.parametrize("name", list(DIALECTS))
@FUZZ
@given(data=st.data())
def test_each_dialect_takes_hostile_values_in_every_field_without_raising(name: str, data: st.DataObject) -> None:
    make, frames = DIALECTS[name]
    frame = json.loads(json.dumps(data.draw(st.sampled_from(frames))))
    target = frame["data"] if isinstance(frame.get("data"), dict) else frame
    keys = sorted(target)
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=3)):
        target[key] = data.draw(VALUES)
    check(make(), name, encode(frame))


@pytest.mark.parametrize("name", list(DIALECTS))
@FUZZ
@given(obj=st.dictionaries(st.text(max_size=12), VALUES, max_size=6))
@example(obj={"txType": "create", "mint": MINT, "signature": SIG, "marketCapSol": HUGE})
@example(obj={"type": "buy", "mint": MINT, "signature": SIG, "solAmount": HUGE})
@example(obj={"kind": "trade", "provider": "x", "received_at": "2024-01-01T00:00:00Z"})
@example(obj={"kind": "trade", "provider": "x", "received_at": AT, "slot": "123456789"})
@example(obj={"v": 1, "type": "trade", "data": {"solAmount": HUGE, "slot": HUGE}})
@example(obj={"x": nested(30)})
def test_each_dialect_takes_random_objects_without_raising(name: str, obj: dict[str, Any]) -> None:
    check(DIALECTS[name][0](), name, encode(obj))


@pytest.mark.parametrize("name", list(DIALECTS))
@pytest.mark.parametrize(
    "payload",
    [
        b'{"txType":"create","marketCapSol":' + b"9" * 400 + b"}",
        b'{"solAmount":NaN,"tokenAmount":Infinity,"x":-Infinity}',
        b'{"a":' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"mint":"a\\u0000b","signature":"\\u0000"}',
        b"\x00\x00",
    ],
    ids=["400-digit", "nan-tokens", "deep", "nul", "nul-bytes"],
)
def test_each_dialect_counts_each_classic_hostile_frame(name: str, payload: bytes) -> None:
    check(DIALECTS[name][0](), name, payload)


def test_a_400_digit_integer_raised_overflow_error_in_the_shared_reader() -> None:
    """The finding itself: ``opt_num(10**400)`` raised OverflowError (float() of it) in the code
    PumpPortal shares with OpenPump and Anaxer."""
    from pumpsync.providers.base import opt_num

    assert opt_num(HUGE) is None and opt_num(-HUGE) is None and opt_num("9" * 500) is None
    out = _pumpportal().receive(b'{"txType":"buy","mint":"' + MINT.encode() + b'","signature":"s","solAmount":'
                                + b"9" * 400 + b"}", AT)  # fmt: skip
    assert Malformed("invalid_fields") in out and Malformed("decode_error") not in out


# ---------------------------------------------------------------- over a real socket


def test_a_pumpportal_frame_with_a_400_digit_integer_is_counted_and_the_session_goes_on(
    servers: Any, make_client: Any
) -> None:
    """Before: OverflowError in the dialect ended the session with a traceback (PumpPortal has no
    history: the launches of the reconnect window were lost)."""
    launch = {"txType": "create", "mint": MINT, "signature": SIG, "traderPublicKey": WALLET, "pool": "pump"}

    def script(ws: RawWs) -> None:
        ws.send_text(json.dumps({**launch, "signature": "bad", "marketCapSol": HUGE}))
        ws.send_text(json.dumps({**launch, "marketCapSol": 30.5}))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("pumpportal", server.url, channels={"new_tokens": {}}).start()
    events = [client.get(timeout=10) for _ in range(2)]
    assert [(e.kind, e.signature) for e in events] == [("unknown", "bad"), ("new_token", SIG)]
    assert events[1].market_cap_sol == 30.5
    wait_until(lambda: client.stats()["connections"][0]["malformed"] == {"invalid_fields": 1}, what="counted")
    assert client.stats()["connections"][0]["connects"] == 1 and client.error is None
