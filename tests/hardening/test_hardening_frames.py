"""Bad frames: every dialect's parser and the frame decoder under property-based fuzzing, then
hostile frames over real sockets (counted by reason, fragmented, oversized).

The parser's contract (``Dialect.receive``): never raises; every frame yields at least one
output; a frame that is not what the protocol promises is counted as ``Malformed(reason)`` with
a bounded reason; every event it does produce is well typed (no NaN, no out-of-range integer).
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import socket
import struct
import subprocess
import sys
import threading
from typing import Any

import pytest
from hardening_support import (
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWs,
    RawWsServer,
    assert_no_tracebacks,
    frame,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pumpsync._framing import FrameDecoder, FrameTooLarge, ProtocolError
from pumpsync.events import KINDS, UNKNOWN, Event
from pumpsync.providers.anaxer import DOCUMENT, V1, Anaxer
from pumpsync.providers.base import (
    MALFORMED_REASONS,
    MAX_DEPTH,
    Dialect,
    Fatal,
    Hello,
    Malformed,
    Notice,
    Pong,
    Rejected,
    Reply,
    StatusReport,
    Subscribed,
    Subscription,
    Unsubscribed,
)
from pumpsync.providers.openpump import OpenPump
from tests.conftest import drain, wait_until

OUTPUT_TYPES = (Event, Reply, Hello, Pong, StatusReport, Subscribed, Unsubscribed, Rejected, Fatal, Notice, Malformed)
RECEIVED_AT = 1_700_000_000_000
INT64 = (-(2**63), 2**63 - 1)
MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
SIG = "5uEezmZnrgk3a1g92qQ3CmbkjtE7j5xV2rbFy43Lt8WeT1MPRjqNLK7g9hzQHZv6kxxLeyujDdX6K69A9LhVpnNa"
SOL = "So11111111111111111111111111111111111111112"

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- the dialects under test


def dialects() -> list[Dialect]:
    """Every dialect in every state that parses differently; fresh for each frame."""
    every = [Subscription(ch) for ch in ("trades", "creations", "graduations", "prices")]
    return [
        OpenPump(0, []),
        Anaxer(0, every),  # form still unknown: the first frame decides
        Anaxer(0, every, form=V1),
        Anaxer(0, every, form=DOCUMENT),
        Anaxer(0, [Subscription("trades")], form=DOCUMENT),  # one channel: document frames need no channel
    ]


def check_event(event: Event) -> None:
    assert event.kind in KINDS and event.provider in ("openpump", "anaxer")
    for name in ("mint", "signature", "name", "symbol", "creator", "uri", "image", "description", "trader", "pool"):
        assert getattr(event, name) is None or type(getattr(event, name)) is str, name
    for name in ("slot", "timestamp"):
        value = getattr(event, name)
        assert value is None or (type(value) is int and INT64[0] <= value <= INT64[1]), (name, value)
    if event.slot is not None:
        assert event.slot >= 0
    for name in (
        "sol_amount",
        "token_amount",
        "price_sol",
        "bonding_curve_progress",
        "sol_raised",
        "market_cap_sol",
        "liquidity_sol",
        "time_to_graduate_s",
        "price_usd",
        "market_cap_usd",
        "initial_buy_tokens",
        "initial_buy_sol",
        "virtual_sol_reserves",
        "virtual_token_reserves",
    ):
        value = getattr(event, name)
        assert value is None or (type(value) is float and math.isfinite(value)), (name, value)
    assert event.side in (None, "buy", "sell")
    assert isinstance(event.raw, dict)
    hash(event.identity)  # de-duplication needs it hashable
    json.dumps({k: v for k, v in event.to_dict().items() if k != "raw"}, allow_nan=False)
    # Whatever writes the event out (stdout, SQLite, a webhook) can: UTF-8 encodable, shallow.
    json.dumps(event.to_dict(), ensure_ascii=False).encode("utf-8")


def check(dialect: Dialect, payload: bytes | str) -> list[Any]:
    """Feed one frame; assert the parser's contract; return the outputs."""
    outputs = dialect.receive(payload, RECEIVED_AT)  # must not raise: that is the whole point
    assert isinstance(outputs, list) and outputs, "every frame yields an output (at least a count)"
    assert all(isinstance(o, OUTPUT_TYPES) for o in outputs), outputs
    reasons = [o.reason for o in outputs if isinstance(o, Malformed)]
    assert set(reasons) <= set(MALFORMED_REASONS), reasons
    events = [o for o in outputs if isinstance(o, Event)]
    for event in events:
        check_event(event)
        if event.kind == UNKNOWN:
            assert reasons, "an unknown event is always counted"
    return outputs


def expected_reason(payload: bytes | str) -> str | None:
    """The reason a frame that is not a JSON object must be counted under (None: it is one)."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            return "invalid_utf8"
    elif not is_utf8_encodable(payload):
        return "invalid_utf8"
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return "not_json"
    if not isinstance(value, dict):
        return "not_object"
    if nesting(value) > MAX_DEPTH:
        return "too_deep"
    if has_surrogate(value):
        return "invalid_utf8"  # a "\ud800" escape: no character UTF-8 can carry
    return None


def nesting(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def has_surrogate(value: Any) -> bool:
    return not is_utf8_encodable(json.dumps(value, ensure_ascii=False))


def is_utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_everywhere(payload: bytes | str) -> None:
    want = expected_reason(payload)
    for dialect in dialects():
        outputs = check(dialect, payload)
        if want is not None:
            assert outputs == [Malformed(want)], (dialect, outputs)


# ---------------------------------------------------------------- strategies

ODD_TEXT = st.sampled_from(
    [
        "",
        "\u0000",
        "\ud800",
        "\udfff",
        "\ufeff",
        "\u202e" + MINT,
        "e\u0301",
        "\U0010ffff",
        "\x1b[31mred\x1b[0m",
        "\U0001d54f" * 50,
        "\u2028",
        "NaN",
        "Infinity",
        "-0",
        "1e999",
        "0x10",
        " 1 ",
        "buy ",
        "BUY",
        SOL,
        MINT,
        SIG,
    ]
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**300, -(10**300), 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([5e-324, -5e-324, 1e308, -1e308, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30), ODD_TEXT)
KEYS = st.one_of(
    st.sampled_from(
        [
            "type",
            "v",
            "data",
            "channel",
            "slot",
            "mint",
            "signature",
            "side",
            "solAmount",
            "tokenAmount",
            "priceSol",
            "price",
            "swap",
            "from",
            "to",
            "uiAmount",
            "timestamp",
            "id",
            "code",
            "message",
            "status",
            "limits",
            "bondingCurve",
            "name",
            "symbol",
            "creator",
            "trader",
            "wallet",
            "sub",
            "liquiditySol",
            "timeToGraduateSeconds",
            "marketCapUsd",
            "uri",
            "sol",
            "usd",
            "progress",
            "currentPrice",
        ]
    ),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6), max_leaves=25
)

# Real frames of every kind both providers send; the fuzzer breaks them field by field.
TEMPLATES: list[dict[str, Any]] = [
    {
        "type": "buy",
        "mint": MINT,
        "signature": SIG,
        "solAmount": 1.5,
        "tokenAmount": 1e6,
        "trader": "T",
        "timestamp": 1_700_000_000_000,
    },
    {"type": "sell", "mint": MINT, "signature": SIG, "solAmount": "0.5", "tokenAmount": 2, "trader": "T"},
    {"type": "new_token", "mint": MINT, "signature": SIG, "name": "N", "symbol": "S", "creator": "C", "timestamp": 1},
    {
        "type": "token_enriched",
        "mint": MINT,
        "signature": SIG,
        "name": "N",
        "description": "d",
        "image": "i",
        "bondingCurve": {"progress": 1.5, "solRaised": 2, "currentPrice": 2.8e-8, "marketCap": 27.9},
    },
    {"type": "connected", "message": "hi", "status": {"running": True}},
    {"type": "status", "data": {"running": True, "processedCount": 3}},
    {"type": "pong", "timestamp": 1},
    {"v": 1, "type": "connected", "ts": 1, "limits": {"tradesMintCap": 100}},
    {"v": 1, "type": "subscribed", "id": "sub-1", "channel": "trades", "filters": {}},
    {"v": 1, "type": "unsubscribed", "id": "sub-1"},
    {"v": 1, "type": "error", "code": "plan_restricted", "message": "no", "id": "sub-1"},
    {"v": 1, "type": "error", "code": "slow_consumer", "message": "slow"},
    {"v": 1, "type": "ping"},
    {
        "v": 1,
        "channel": "trades",
        "sub": "sub-1",
        "data": {
            "type": "swap",
            "wallet": "W",
            "signature": SIG,
            "slot": 309812500,
            "timestamp": 1_700_000_000_000,
            "swap": {"from": {"mint": SOL, "uiAmount": 0.5}, "to": {"mint": MINT, "uiAmount": 1e6}},
        },
    },
    {
        "v": 1,
        "channel": "creations",
        "sub": "sub-2",
        "data": {
            "type": "created",
            "mint": MINT,
            "name": "N",
            "symbol": "S",
            "creator": "C",
            "uri": "u",
            "signature": SIG,
            "slot": 10,
            "timestamp": None,
        },
    },
    {
        "v": 1,
        "channel": "graduations",
        "data": {
            "type": "graduated",
            "mint": MINT,
            "signature": SIG,
            "slot": 11,
            "liquiditySol": 85,
            "timeToGraduateSeconds": 600,
        },
    },
    {
        "v": 1,
        "channel": "prices",
        "data": {"type": "price", "mint": MINT, "slot": 12, "price": {"sol": 1e-8, "usd": 2e-6}, "marketCapUsd": 5000},
    },
    {
        "mint": MINT,
        "signature": SIG,
        "slot": 13,
        "side": "buy",
        "solAmount": 0.1,
        "tokenAmount": 5,
        "priceSol": 0.02,
        "channel": "trades",
    },
    {"mint": MINT, "signature": SIG, "slot": 14, "name": "N", "symbol": "S", "creator": "C"},
    {"subscribed": "trades"},
    {"type": "subscribed", "channel": "creations"},
    {"type": "error", "code": "forbidden", "channel": "trades", "message": "Your plan doesn't include this stream."},
    {"type": "error", "code": "unauthorized"},
]


def _containers(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every dict and list inside ``value`` (the places a mutation can hit)."""
    found = [path] if isinstance(value, (dict, list)) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _containers(child, (*path, key))
    return found


@st.composite
def broken_frames(draw: st.DrawFn) -> Any:
    """A real frame with some of its fields replaced, removed or added."""
    obj = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_containers(obj)))
        target = obj
        for step in path:
            target = target[step]
        if isinstance(target, dict):
            action = draw(st.sampled_from(["replace", "delete", "add"])) if target else "add"
            key = draw(st.sampled_from(sorted(target))) if action != "add" else draw(KEYS)
            if action == "delete":
                del target[key]
            else:
                target[key] = draw(JSON)
        elif target:
            target[draw(st.integers(0, len(target) - 1))] = draw(JSON)
    if draw(st.booleans()):
        return obj
    return draw(st.one_of(JSON, st.just([obj]), st.just(json.dumps(obj))))  # or the frame in the wrong wrapper


def encode(value: Any, how: str) -> bytes | str:
    text = json.dumps(value, allow_nan=True, ensure_ascii=how == "ascii")
    if how == "str":
        return text
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8, on purpose


HOW = st.sampled_from(["ascii", "utf8", "str"])

# ---------------------------------------------------------------- properties of the parsers


@FUZZ
@given(value=JSON, how=HOW)
def test_arbitrary_json_values_never_raise(value: Any, how: str) -> None:
    check_everywhere(encode(value, how))


@FUZZ
@given(value=broken_frames(), how=HOW)
@example(value={"v": 1, "data": {"type": [], "slot": 1}}, how="ascii")  # an unhashable payload type
@example(value={"type": {"a": 1}, "slot": 1, "signature": SIG}, how="ascii")
@example(
    value={"mint": MINT, "signature": SIG, "slot": 1, "side": "buy", "solAmount": 1e308, "tokenAmount": 1e-308},
    how="ascii",
)  # a price that overflows to inf
@example(value={"type": "buy", "mint": MINT, "signature": SIG, "solAmount": 1e308, "tokenAmount": 5e-324}, how="ascii")
@example(value={"mint": MINT, "signature": SIG, "slot": -5, "name": "N"}, how="ascii")  # a negative slot
@example(value={"mint": MINT, "signature": SIG, "slot": 2**64, "name": "N"}, how="ascii")  # beyond 64 bits
def test_real_frames_with_wrong_fields_never_raise(value: Any, how: str) -> None:
    check_everywhere(encode(value, how))


@FUZZ
@given(data=st.binary(max_size=600))
def test_byte_level_fuzz(data: bytes) -> None:
    check_everywhere(data)


@FUZZ
@given(
    template=st.sampled_from(TEMPLATES),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=4), st.integers(0, 3)), min_size=1, max_size=6),
)
def test_mutated_bytes_of_real_frames(template: dict[str, Any], edits: list[tuple[int, bytes, int]]) -> None:
    data = bytearray(json.dumps(template).encode())
    for position, insert, delete in edits:
        at = position % (len(data) + 1)
        data[at : at + delete] = insert
    check_everywhere(bytes(data))


INVALID_UTF8 = [b"\x80", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xfe\xff"]


@FUZZ
@given(template=st.sampled_from(TEMPLATES), bad=st.sampled_from(INVALID_UTF8), where=st.integers(0, 10_000))
def test_invalid_utf8_is_counted(template: dict[str, Any], bad: bytes, where: int) -> None:
    data = json.dumps(template, ensure_ascii=False).encode()
    at = where % (len(data) + 1)
    payload = data[:at] + bad + data[at:]
    check_everywhere(payload)
    assert OpenPump(0, []).receive(payload, RECEIVED_AT) == [Malformed("invalid_utf8")]


@pytest.mark.parametrize("depth", [10, 500, 990, 1_000, 5_000, 200_000])
@pytest.mark.parametrize("shape", ["[", '{"a":', '{"type":"buy","mint":"M","signature":"S","x":['])
def test_deep_nesting(depth: int, shape: str) -> None:
    closer = {"[": "]", '{"a":': "}"}
    if shape.startswith('{"type"'):
        text = shape + "[" * depth + "]" * depth + "]}"
    else:
        text = shape * depth + "1" + closer[shape] * depth
    check_everywhere(text.encode())


@pytest.mark.parametrize(
    "payload",
    [
        b"1" * 5_000,  # more digits than int() accepts
        b'{"slot": ' + b"9" * 5_000 + b"}",
        b'{"type":"buy","mint":"M","signature":"S","solAmount":NaN,"tokenAmount":Infinity}',
        b'{"type":"buy","mint":"M","signature":"S","solAmount":-Infinity,"tokenAmount":-1e400}',
        b'{"v":1,"channel":"trades","data":{"type":"swap","signature":"S","slot":1e400}}',
        b"\xef\xbb\xbf{}",  # a BOM
        b"\x00" * 100,
        b"",
        b"null",
        b'"string"',
        b'{"type":"buy"}' * 2,
        '{"type":"new_token","mint":"\ud800","signature":"s"}'.encode("utf-8", "surrogatepass"),
        json.dumps({"type": "new_token", "mint": "\ud800", "signature": "s"}).encode(),  # escaped: valid JSON
    ],
)
def test_hostile_classics(payload: bytes) -> None:
    check_everywhere(payload)


def test_binary_payloads_go_through_the_same_checks() -> None:
    # The connection counts a binary frame as "binary" and still hands its bytes to the dialect.
    check_everywhere(bytes(range(256)))
    check_everywhere(json.dumps(TEMPLATES[0]).encode())


# ---------------------------------------------------------------- properties of the frame decoder


@FUZZ
@given(data=st.binary(max_size=3_000), cuts=st.lists(st.integers(1, 64), max_size=20), cap=st.integers(1, 2_000))
def test_decoder_byte_fuzz_raises_only_protocol_errors(data: bytes, cuts: list[int], cap: int) -> None:
    decoder = FrameDecoder(cap)
    pos = 0
    try:
        for size in [*cuts, len(data)]:
            for opcode, payload in decoder.feed(data[pos : pos + size]):
                assert opcode in (0x1, 0x2, 0x8, 0x9, 0xA) and len(payload) <= cap
            pos += size
            assert decoder.buffered <= 2 * cap + 14  # never holds more than a message and a header
    except (ProtocolError, FrameTooLarge):
        pass  # the connection closes with 1002 / 1009


@st.composite
def wire(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, bytes]]]:
    """Messages, each possibly fragmented with control frames between fragments, and what must come out."""
    stream, expected = b"", []
    for _ in range(draw(st.integers(1, 6))):
        opcode = draw(st.sampled_from([0x1, 0x2]))
        message = draw(st.binary(max_size=300))
        cuts = sorted(draw(st.lists(st.integers(0, len(message)), max_size=4)))
        pieces = [message[a:b] for a, b in zip([0, *cuts], [*cuts, len(message)], strict=True)]
        for i, piece in enumerate(pieces):
            stream += frame(opcode if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1)
            if i < len(pieces) - 1 and draw(st.booleans()):
                ping = draw(st.binary(max_size=125))
                stream += frame(OP_PING, ping)
                expected.append((OP_PING, ping))
        expected.append((opcode, message))
    return stream, expected


@FUZZ
@given(case=wire(), cuts=st.lists(st.integers(1, 50), max_size=40))
def test_decoder_reassembles_whatever_the_chunking(
    case: tuple[bytes, list[tuple[int, bytes]]], cuts: list[int]
) -> None:
    stream, expected = case
    decoder = FrameDecoder(1 << 20)
    out, pos = [], 0
    for size in [*cuts, len(stream)]:
        out += list(decoder.feed(stream[pos : pos + size]))
        pos += size
    assert out == expected and decoder.buffered == 0


def test_decoder_refuses_a_giant_length_from_the_header_alone() -> None:
    decoder = FrameDecoder(1 << 20)
    with pytest.raises(FrameTooLarge):
        list(decoder.feed(struct.pack("!BBQ", 0x81, 127, 2**63 - 1)))
    assert decoder.buffered < 16  # nothing was allocated for it


# ---------------------------------------------------------------- over real sockets

FAST_SOCKET = dict(ping_interval=30, pong_timeout=5, stale_timeout=30)
TRADE = {"type": "buy", "mint": MINT, "signature": SIG, "solAmount": 1.0, "tokenAmount": 10.0, "trader": "T"}


def trade(n: int) -> bytes:
    return json.dumps({**TRADE, "signature": f"{SIG[:-6]}{n:06d}"}).encode()


def test_hostile_frames_over_a_socket_are_counted_by_reason(servers, make_client, pumpsync_logs, capfd) -> None:
    hostile = [
        (OP_TEXT, b"{not json", "not_json"),
        (OP_TEXT, b"\xff\xfe{}", "invalid_utf8"),
        (OP_TEXT, b"[1,2,3]", "not_object"),
        (OP_TEXT, b'{"type":"airdrop"}', "unknown_type"),
        (OP_TEXT, b'{"type":"buy","signature":5}', "invalid_fields"),
        (OP_TEXT, b"[" * 100_000 + b"]" * 100_000, "not_json"),  # deep nesting, beyond the JSON parser
        (OP_TEXT, b'{"type":"buy","x":' + b"[" * 500 + b"]" * 500 + b"}", "too_deep"),  # within it
        (OP_TEXT, b'{"type":"new_token","mint":"\\ud800","signature":"s"}', "invalid_utf8"),  # a lone surrogate
        (OP_TEXT, b'{"slot":' + b"9" * 10_000 + b"}", "not_json"),  # a huge number
        (0x2, trade(1), "binary"),  # a binary frame: counted, still read
    ]

    def script(ws: RawWs) -> None:
        for opcode, payload, _ in hostile:
            ws.send(frame(opcode, payload))
        ws.send_text(b'{"type":"buy","mint":"M","signature":"nan-trade","solAmount":NaN,"tokenAmount":Infinity}')
        ws.send_text(trade(2))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, **FAST_SOCKET).start()
    events = drain(client, 5)  # unknown_type, invalid_fields: as "unknown"; the binary trade; NaN; the last trade
    kinds = [e.kind for e in events]
    assert kinds == ["unknown", "unknown", "trade", "trade", "trade"], kinds
    nan_trade = events[3]
    assert nan_trade.sol_amount is None and nan_trade.token_amount is None and nan_trade.price_sol is None
    stats = client.stats()["connections"][0]
    want: dict[str, int] = {}
    for _, _, reason in hostile:
        want[reason] = want.get(reason, 0) + 1
    assert stats["malformed"] == want
    assert stats["connects"] == 1 and client.connected  # bad frames never cost the connection
    assert_no_tracebacks(pumpsync_logs, capfd)


def test_fragmented_message_trickled_byte_by_byte_with_a_ping_between(servers, make_client) -> None:
    pong: list[bytes] = []

    def script(ws: RawWs) -> None:
        message = trade(7)
        pieces = [message[i : i + 7] for i in range(0, len(message), 7)]
        wire_bytes = b""
        for i, piece in enumerate(pieces):
            wire_bytes += frame(OP_TEXT if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1)
            if i == 3:
                wire_bytes += frame(OP_PING, b"are-you-there")
        for i in range(len(wire_bytes)):  # one byte per TCP segment (TCP_NODELAY)
            ws.send(wire_bytes[i : i + 1])
        pong.append(ws.wait_for(OP_PONG))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, **FAST_SOCKET).start()
    (event,) = drain(client, 1)
    assert event.signature == f"{SIG[:-6]}000007"
    wait_until(lambda: pong, what="the pong")
    assert pong == [b"are-you-there"]
    assert client.stats()["connections"][0]["malformed"] == {}


@pytest.mark.parametrize("shape", ["one frame, announced huge", "many small fragments"])
def test_oversized_message_closes_1009_and_reconnects(servers, make_client, shape: str) -> None:
    close_codes: list[int] = []
    sessions = threading.Semaphore(0)

    def script(ws: RawWs) -> None:
        sessions.release()
        if len(ws.server.sessions) == 1:
            if shape.startswith("one"):
                ws.send(frame(OP_TEXT, b"", length=2**62))  # just the header: refused before any payload
            else:
                chunk = b"x" * 60_000
                try:
                    for i in range(30):  # 1.8 MB in fragments of 60 kB, under a 1 MiB cap
                        ws.send(frame(OP_TEXT if i == 0 else OP_CONT, chunk, fin=False))
                except OSError:  # the client hung up mid-message (its answer to it); its close frame is read below
                    pass
            payload = ws.wait_for(OP_CLOSE)
            close_codes.append(struct.unpack("!H", payload[:2])[0])
        else:
            ws.send_text(trade(3))
            ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, **FAST_SOCKET).start()  # the default cap: 1 MiB
    assert client.config.max_frame_size == 1024 * 1024
    (event,) = drain(client, 1)  # from the second session
    assert close_codes == [1009]
    stats = client.stats()["connections"][0]
    assert stats["malformed"] == {"oversized": 1} and stats["disconnects"] == {"oversized:1009": 1}
    assert event.kind == "trade"


def test_oversized_from_the_simulator_with_the_default_cap(sim, make_client) -> None:
    client = make_client("openpump", sim.url("openpump")).start()
    wait_until(lambda: client.connected, what="connected")
    sim.wait_for_connections("openpump", 1, subscribed=True, timeout=10)
    sim.send_malformed("oversized", provider="openpump", size=2 * 1024 * 1024)
    wait_until(lambda: client.stats()["connections"][0]["disconnects"].get("oversized:1009"), what="1009")
    wait_until(lambda: client.connected and client.stats()["connections"][0]["connects"] >= 2, what="reconnect")
    sim.emit(1, kind="launch")
    assert drain(client, 1)[0].kind == "new_token"  # streaming again
    assert client.stats()["connections"][0]["malformed"]["oversized"] == 1


def _blobs(rng: random.Random) -> list[bytes]:
    """Byte streams a broken or hostile server might send after the upgrade."""
    good = frame(OP_TEXT, trade(9))
    blobs = [rng.randbytes(n) for n in (1, 2, 3, 10, 100, 1000, 4096, 65536)]
    for _ in range(12):  # a valid frame with a few bits flipped
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        blobs.append(bytes(data))
    blobs += [good[:cut] for cut in (1, 2, 5, len(good) // 2, len(good) - 1)]  # truncated
    blobs += [
        struct.pack("!BBH", 0x81, 126, 60_000) + b"x" * 10,  # promises 60 kB, sends 10 bytes
        struct.pack("!BBQ", 0x81, 127, 2**63 - 1),  # promises 8 EiB
        frame(OP_PING, b"p" * 126),  # control frame too long
        frame(OP_PING, b"p", fin=False),  # fragmented control frame
        frame(OP_CLOSE, b"\x03"),  # close with a one-byte payload
        frame(OP_CLOSE, b"\x03\xe8\xff\xfe"),  # close 1000 with an invalid UTF-8 reason
        frame(OP_CLOSE, b"\x00\x00"),  # close code 0
        frame(OP_CLOSE, b"\xff\xff"),  # close code 65535
        frame(OP_CONT, b"nothing to continue"),
        frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_TEXT, b'"buy"}'),  # a new message inside a fragmented one
        bytes([0x81 | 0x40, 2]) + b"{}",  # RSV1 without an extension
        bytes([0x81, 0x82]) + b"\x00\x00\x00\x00{}",  # a masked server frame
        *(frame(op, b"?") for op in (0x3, 0x7, 0xB, 0xF)),  # reserved opcodes
        frame(OP_TEXT, b"") * 2000,  # many empty frames
        frame(OP_PING, b"") * 500,  # a ping flood
    ]
    return blobs


def _fatal_close(blob: bytes) -> bool:
    """Whether the blob holds a close frame OpenPump defines as a refusal (1008, 4001): not fuzzing anymore."""
    try:
        return any(op == OP_CLOSE and payload[:2] in (b"\x03\xf0", b"\x0f\xa1")
                   for op, payload in FrameDecoder(1 << 20).feed(blob))  # fmt: skip
    except (ProtocolError, FrameTooLarge):
        return False


def test_random_bytes_after_the_upgrade_never_crash_the_client(servers, make_client, pumpsync_logs, capfd) -> None:
    blobs = [b for b in _blobs(random.Random(20240601)) if not _fatal_close(b)]

    def script(ws: RawWs) -> None:
        n = len(ws.server.sessions) - 1
        if n < len(blobs):
            ws.send(blobs[n])
            ws.sock.shutdown(socket.SHUT_WR)  # then FIN: whatever was promised never comes
            ws.hold()
            return
        ws.send_text(json.dumps({**TRADE, "signature": "after-the-fuzz"}))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, backoff_initial=0.01, backoff_max=0.02, healthy_after=30,
                         **FAST_SOCKET).start()  # fmt: skip
    deadline_events = []
    while not deadline_events or deadline_events[-1].signature != "after-the-fuzz":
        deadline_events += drain(client, 1, timeout=60)
    stats = client.stats()["connections"][0]
    assert client.error is None and stats["connects"] == len(blobs) + 1
    reasons = {key.split(":")[0] for key in stats["disconnects"]}
    assert reasons <= {"dropped", "protocol", "oversized", "closed"}, stats["disconnects"]
    assert set(stats["malformed"]) <= set(MALFORMED_REASONS)
    assert_no_tracebacks(pumpsync_logs, capfd)


# ---------------------------------------------------------------- what the CLI prints of hostile frames

HOSTILE_EVENTS = [
    b'{"type":"buy","mint":"M","signature":"s1","solAmount":NaN,"tokenAmount":Infinity,"x":[NaN,-Infinity]}',
    b'{"type":"new_token","mint":"M","signature":"s2","name":"\\u001b]0;pwned\\u0007\\u001b[2J","symbol":"\\u202eRTL"}',
    b'{"type":"new_token","mint":"\\ud800","signature":"s3"}',  # a lone surrogate: counted, never printed
    b'{"type":"airdrop","deep":' + b"[" * 30 + b"]" * 30 + b"}",
    b'{"type":"buy","mint":"M","signature":"s5","solAmount":1e308,"tokenAmount":1e-308}',
    b'{"type":"buy","mint":"M","signature":"last","solAmount":1,"tokenAmount":2}',
]


def _cli_against(servers, fmt: str) -> subprocess.CompletedProcess[bytes]:
    def script(ws: RawWs) -> None:
        for payload in HOSTILE_EVENTS:
            ws.send_text(payload)
        ws.hold()

    server = servers(RawWsServer(script))
    env = {**os.environ, "PUMPSYNC_API_KEY": "hardening-cli-key"}
    args = ["stream", "--provider", "openpump", "--url", server.url, "--format", fmt, "--count", "5"]
    return subprocess.run([sys.executable, "-m", "pumpsync", *args], capture_output=True, env=env, timeout=60)


def _no_nan(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def test_cli_jsonl_output_of_hostile_frames_is_strict_json(servers) -> None:
    result = _cli_against(servers, "jsonl")
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    lines = result.stdout.decode("utf-8").splitlines()  # strict UTF-8: no lone surrogate got through
    events = [json.loads(line, parse_constant=_no_nan) for line in lines]  # no NaN/Infinity either
    assert [e["signature"] for e in events] == ["s1", "s2", None, "s5", "last"]
    assert events[3]["price_sol"] is None  # 1e308 / 1e-308 overflows: no price rather than inf


def test_cli_text_output_does_not_pass_terminal_escapes_through(servers) -> None:
    result = _cli_against(servers, "text")
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert b"\x1b" not in result.stdout and b"\x07" not in result.stdout
