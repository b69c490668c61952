"""The simulated Geyser server's own protobuf writer and request reader.

Independent evidence: nothing here is shared with the client's codec (``pumpsync.providers.geyser``);
written from the same field table (rpcpool/yellowstone-grpc 0c3f357, ``geyser.proto`` and
``solana-storage.proto``), in another style (a builder of nested parts).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pumpsync.simulator._solana_encode import b58decode

Part = tuple[int, Any]  # (field number, int | bytes | str | list[Part] (a nested message))


def _uvarint(n: int) -> bytearray:
    buf = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            buf.append(low | 0x80)
        else:
            buf.append(low)
            return buf


def write(parts: list[Part]) -> bytes:
    """A message from its parts; a nested list is a sub-message, a bool/int a varint."""
    out = bytearray()
    for number, value in parts:
        if isinstance(value, (bool, int)):
            out += _uvarint(number * 8) + _uvarint(int(value))
            continue
        if isinstance(value, list):
            value = write(value)
        elif isinstance(value, str):
            value = value.encode()
        out += _uvarint(number * 8 + 2) + _uvarint(len(value)) + value
    return bytes(out)


def ping_update() -> bytes:
    return write([(1, "pumpsync"), (6, [])])


def pong_update(pong_id: int) -> bytes:
    return write([(9, [(1, pong_id)])])


def slot_update(slot: int, status: int, parent: int | None = None) -> bytes:
    body: list[Part] = [(1, slot)]
    if parent is not None:
        body.append((2, parent))
    body.append((3, status))
    return write([(1, "pumpsync"), (3, body)])


def transaction_update(
    signature: str,
    slot: int,
    keys: list[str],
    instructions: list[dict[str, Any]],
    inner: list[dict[str, Any]],
    logs: list[str] | None,
    failed: bool,
    loaded: int = 0,
) -> bytes:
    """A ``SubscribeUpdate`` carrying one transaction (``getTransaction``'s json shape in); the
    last ``loaded`` accounts travel as lookup-table addresses (half writable, half readonly)."""
    static = keys[: len(keys) - loaded] if loaded else keys
    writable = keys[len(static) : len(static) + loaded // 2]
    readonly = keys[len(static) + loaded // 2 :]
    raw_sig = b58decode(signature)
    message: list[Part] = [(1, [(1, 1), (2, 0), (3, 0)])]
    message += [(2, b58decode(key)) for key in static]
    message.append((3, bytes(32)))
    for ins in instructions:
        message.append((4, [(1, ins["programIdIndex"]), (2, bytes(ins["accounts"])), (3, b58decode(ins["data"]))]))
    message.append((5, bool(loaded)))
    meta: list[Part] = []
    if failed:
        meta.append((1, [(1, base64.b64decode("AQAAAAMQAAAAAQAAAA=="))]))
    meta.append((2, 5000))
    for group in inner:
        members: list[Part] = [(1, group["index"])]
        for ins in group["instructions"]:
            parts: list[Part] = [(1, ins["programIdIndex"]), (2, bytes(ins["accounts"])), (3, b58decode(ins["data"]))]
            if ins.get("stackHeight") is not None:
                parts.append((4, ins["stackHeight"]))
            members.append((2, parts))
        meta.append((5, members))
    if logs is None:
        meta.append((11, True))
    else:
        meta += [(6, line) for line in logs]
    meta += [(12, b58decode(key)) for key in writable]
    meta += [(13, b58decode(key)) for key in readonly]
    info: list[Part] = [(1, raw_sig), (2, False), (3, [(1, raw_sig), (2, message)]), (4, meta), (5, slot % 1000)]
    return write([(1, "pumpsync"), (4, [(1, info), (2, slot)])])


# ---------------------------------------------------------------- requests


@dataclass
class Request:
    """What a ``SubscribeRequest`` asked for (only what the simulator acts on)."""

    filters: bool = False  # it carries filters (transactions or slots): it replaces the filter set
    programs: list[str] = field(default_factory=list)
    slots: bool = False
    commitment: int = 0
    from_slot: int | None = None
    ping: int | None = None


def _take_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def _read(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(data):
        key, i = _take_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _take_varint(data, i)
            out.append((number, value))
        elif wire == 2:
            size, i = _take_varint(data, i)
            out.append((number, data[i : i + size]))
            i += size
        else:
            raise ValueError("unexpected wire type")
    return out


def read_request(data: bytes) -> Request:
    request = Request()
    for number, value in _read(data):
        if number == 3 and isinstance(value, bytes):  # transactions map entry: key=1, value=2
            request.filters = True
            for part, body in _read(value):
                if part == 2 and isinstance(body, bytes):
                    request.programs += [v.decode() for n, v in _read(body) if n == 3 and isinstance(v, bytes)]
        elif number == 2:
            request.filters = request.slots = True
        elif number == 6 and isinstance(value, int):
            request.commitment = value
        elif number == 11 and isinstance(value, int):
            request.from_slot = value
        elif number == 9 and isinstance(value, bytes):
            request.ping = next((v for n, v in _read(value) if n == 1 and isinstance(v, int)), 0)
    return request


__all__ = ["Request", "ping_update", "pong_update", "read_request", "slot_update", "transaction_update", "write"]
