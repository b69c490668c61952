"""A small hand-written protobuf codec for Yellowstone gRPC's ``Subscribe`` (no generated code).

Field numbers from ``rpcpool/yellowstone-grpc`` at commit 0c3f357ab526655ea412b15e85893bf274e0fae9:
``yellowstone-grpc-proto/proto/geyser.proto`` and ``.../proto/solana-storage.proto`` (that directory
is Apache-2.0; only the numbers are used here, no text of the files).

Only what pumpsync needs is encoded (a transactions filter, slots, commitment, ``from_slot``, a
ping) and decoded (transactions with their meta, slots, pings, pongs); other fields are skipped.
Everything read is bounded: a varint is at most 10 bytes, a length never reaches past its
message, a repeated field has a ceiling. A message that breaks a rule raises ``ProtoError``
(one counted malformed message), never anything else.
"""

from __future__ import annotations

from typing import NamedTuple

# -- SubscribeRequest (geyser.proto)
_REQ_SLOTS, _REQ_TRANSACTIONS, _REQ_COMMITMENT, _REQ_PING, _REQ_FROM_SLOT = 2, 3, 6, 9, 11
_TXF_VOTE, _TXF_FAILED, _TXF_INCLUDE = 1, 2, 3  # SubscribeRequestFilterTransactions
_SLF_BY_COMMITMENT = 1  # SubscribeRequestFilterSlots.filter_by_commitment
# -- SubscribeUpdate (geyser.proto): the oneof's members we read
_UPD_SLOT, _UPD_TRANSACTION, _UPD_PING, _UPD_PONG = 3, 4, 6, 9
# -- ConfirmedBlock.Message / TransactionStatusMeta / InnerInstruction(s) (solana-storage.proto)
_MSG_ACCOUNT_KEYS, _MSG_INSTRUCTIONS = 2, 4
_META_ERR, _META_INNER, _META_LOGS, _META_LOGS_NONE = 1, 5, 6, 11
_META_LOADED_WRITABLE, _META_LOADED_READONLY = 12, 13

COMMITMENTS = {"processed": 0, "confirmed": 1, "finalized": 2}
SLOT_DEAD = 6  # SlotStatus.SLOT_DEAD

# Ceilings per message: far above any real transaction (1232-byte packets; 64 accounts plus lookup
# tables of at most 256), low enough that a hostile message cannot make us build millions of objects.
MAX_KEYS = 512
MAX_LOG_LINES = 20_000
MAX_INNER = 20_000
_WIRE_VARINT, _WIRE_I64, _WIRE_LEN, _WIRE_I32 = 0, 1, 2, 5


class ProtoError(Exception):
    """A message that is not what the protocol promises; ``str()`` is a bounded reason."""


# ---------------------------------------------------------------- encoding (requests)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, _WIRE_LEN) + _varint(len(payload)) + payload


def _uint_field(field: int, value: int) -> bytes:
    return _key(field, _WIRE_VARINT) + _varint(value)


def _map_entry(field: int, name: str, message: bytes) -> bytes:
    return _len_field(field, _len_field(1, name.encode()) + _len_field(2, message))


def subscribe_request(
    programs: tuple[str, ...],
    commitment: str,
    *,
    slots: bool = True,
    from_slot: int | None = None,
    ping_id: int | None = None,
) -> bytes:
    """The ``SubscribeRequest`` that sets the whole filter set: successful non-vote transactions
    that touch any of ``programs``; slot updates (every status at ``processed``: DEAD ones too)."""
    tx_filter = _uint_field(_TXF_VOTE, 0) + _uint_field(_TXF_FAILED, 0)
    tx_filter += b"".join(_len_field(_TXF_INCLUDE, program.encode()) for program in programs)
    out = _map_entry(_REQ_TRANSACTIONS, "pumpsync", tx_filter)
    if slots:
        by_commitment = _uint_field(_SLF_BY_COMMITMENT, 0 if commitment == "processed" else 1)
        out += _map_entry(_REQ_SLOTS, "pumpsync", by_commitment)
    out += _uint_field(_REQ_COMMITMENT, COMMITMENTS[commitment])
    if ping_id is not None:
        out += _len_field(_REQ_PING, _uint_field(1, ping_id & 0x7FFFFFFF))
    if from_slot is not None:
        out += _uint_field(_REQ_FROM_SLOT, from_slot)
    return out


def ping_request(ping_id: int) -> bytes:
    """A request that carries only ``ping {id}``: the server answers ``pong`` and keeps the filters
    (any other request would replace them)."""
    return _len_field(_REQ_PING, _uint_field(1, ping_id & 0x7FFFFFFF))


# ---------------------------------------------------------------- decoding (updates)


class InnerInstruction(NamedTuple):
    program_index: int
    accounts: bytes  # indices into the transaction's accounts
    data: bytes


class Transaction(NamedTuple):
    slot: int
    signature: bytes
    failed: bool  # meta.err set
    logs: list[str] | None  # None: the node sent none (log_messages_none)
    inner: list[tuple[int, list[InnerInstruction]]]  # (top-level instruction index, its inner ones)
    keys: list[bytes]  # the message's account keys, then the loaded writable, then readonly (ALT)
    instructions: list[InnerInstruction]  # the top-level ones (CompiledInstruction: the same three fields)


class Slot(NamedTuple):
    slot: int
    status: int
    parent: int | None


class Ping(NamedTuple):
    pass


class Pong(NamedTuple):
    id: int


class Other(NamedTuple):
    """An update of a kind pumpsync does not ask for (accounts, blocks ...): skipped."""

    field: int


Update = Transaction | Slot | Ping | Pong | Other


def _fields(data: bytes | memoryview) -> list[tuple[int, int, int | memoryview]]:
    """Every field of one message: (number, wire type, value); a length-delimited value as a view.
    One-byte keys and lengths (nearly all of them) are read inline: this loop is the codec's cost."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    end = len(view)
    pos = 0
    out: list[tuple[int, int, int | memoryview]] = []
    append = out.append
    while pos < end:
        key = view[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = _read_varint(view, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ProtoError("field_zero")
        if wire == _WIRE_LEN:
            if pos < end and view[pos] < 0x80:
                size = view[pos]
                pos += 1
            else:
                size, pos = _read_varint(view, pos, end)
            if size > end - pos:
                raise ProtoError("length_past_end")
            append((field, wire, view[pos : pos + size]))
            pos += size
        elif wire == _WIRE_VARINT:
            value, pos = _read_varint(view, pos, end)
            append((field, wire, value))
        elif wire == _WIRE_I64 or wire == _WIRE_I32:
            width = 8 if wire == _WIRE_I64 else 4
            if width > end - pos:
                raise ProtoError("length_past_end")
            append((field, wire, int.from_bytes(view[pos : pos + width], "little")))
            pos += width
        else:
            raise ProtoError("wire_type")
    return out


def _read_varint(view: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos < end and view[pos] < 0x80:
        return view[pos], pos + 1
    value = shift = 0
    for i in range(pos, min(pos + 10, end)):
        byte = view[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >= 1 << 64:
                raise ProtoError("varint_overflow")
            return value, i + 1
        shift += 7
    raise ProtoError("varint_past_end" if end - pos < 10 else "varint_too_long")


def _message(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ProtoError("wire_type")
    return value


_SLOT_MAX = 2**63 - 1


def _int(value: int | memoryview) -> int:
    if isinstance(value, memoryview):
        raise ProtoError("wire_type")
    return value


def decode_update(data: bytes) -> Update:
    """One ``SubscribeUpdate``; raises ``ProtoError`` for a message that breaks the rules."""
    kind: tuple[int, memoryview] | None = None
    for field, _, value in _fields(data):
        if field in (_UPD_SLOT, _UPD_TRANSACTION, _UPD_PING, _UPD_PONG) or 2 <= field <= 10:
            kind = (field, _message(value))  # a oneof: the last one wins, as in protobuf
    if kind is None:
        raise ProtoError("empty_update")
    field, body = kind
    if field == _UPD_TRANSACTION:
        return _transaction(body)
    if field == _UPD_SLOT:
        return _slot(body)
    if field == _UPD_PING:
        return Ping()
    if field == _UPD_PONG:
        pong_id = 0
        for number, _, value in _fields(body):
            if number == 1:
                pong_id = _int(value) & 0xFFFFFFFF
        return Pong(pong_id)
    return Other(field)


def _slot_value(value: int | memoryview) -> int:
    """A slot: a uint64 on the wire, but none past a signed 64-bit integer is real (and every store,
    SQLite's included, refuses it)."""
    slot = _int(value)
    if slot > _SLOT_MAX:
        raise ProtoError("slot_range")
    return slot


def _slot(body: memoryview) -> Slot:
    slot, status, parent = 0, 0, None
    for field, _, value in _fields(body):
        if field == 1:
            slot = _slot_value(value)
        elif field == 2:
            parent = _slot_value(value)
        elif field == 3:
            status = _int(value)
    return Slot(slot, status, parent)


def _transaction(body: memoryview) -> Transaction:
    slot = 0
    info: memoryview | None = None
    for field, _, value in _fields(body):
        if field == 1:
            info = _message(value)
        elif field == 2:
            slot = _slot_value(value)
    if info is None:
        raise ProtoError("no_transaction")
    signature = b""
    message: memoryview | None = None
    meta: memoryview | None = None
    for field, _, value in _fields(info):
        if field == 1:
            signature = bytes(_message(value))
        elif field == 3:  # ConfirmedBlock.Transaction: signatures=1, message=2
            for number, _, part in _fields(_message(value)):
                if number == 2:
                    message = _message(part)
                elif number == 1 and not signature:
                    signature = bytes(_message(part))
        elif field == 4:
            meta = _message(value)
    if len(signature) != 64:
        raise ProtoError("bad_signature")
    keys: list[bytes] = []
    top: list[InnerInstruction] = []
    if message is not None:
        for number, _, value in _fields(message):
            if number == _MSG_ACCOUNT_KEYS:
                keys.append(_pubkey(value))
            elif number == _MSG_INSTRUCTIONS:
                if len(top) >= MAX_INNER:
                    raise ProtoError("too_many_instructions")
                top.append(_instruction(_message(value)))
    failed: bool = False
    logs: list[str] | None = None
    inner: list[tuple[int, list[InnerInstruction]]] = []
    writable: list[bytes] = []
    readonly: list[bytes] = []
    if meta is not None:
        failed, logs, inner, writable, readonly = _meta(meta)
    keys += writable
    keys += readonly  # lookup-table accounts, in the order a transaction's indices count them
    if len(keys) > MAX_KEYS:
        raise ProtoError("too_many_keys")
    return Transaction(slot, signature, failed, logs, inner, keys, top)


def _pubkey(value: int | memoryview) -> bytes:
    raw = bytes(_message(value))
    if len(raw) != 32:
        raise ProtoError("bad_pubkey")
    return raw


def _meta(
    meta: memoryview,
) -> tuple[bool, list[str] | None, list[tuple[int, list[InnerInstruction]]], list[bytes], list[bytes]]:
    failed = False
    logs: list[str] = []
    logs_none = False
    inner: list[tuple[int, list[InnerInstruction]]] = []
    count = 0
    writable: list[bytes] = []
    readonly: list[bytes] = []
    for field, _, value in _fields(meta):
        if field == _META_ERR:
            failed = True  # present at all: the transaction failed (its content is bincode, unread)
        elif field == _META_LOGS:
            if len(logs) >= MAX_LOG_LINES:
                raise ProtoError("too_many_logs")
            try:
                logs.append(bytes(_message(value)).decode("utf-8"))
            except UnicodeDecodeError:
                raise ProtoError("invalid_utf8") from None
        elif field == _META_LOGS_NONE:
            logs_none = bool(_int(value))
        elif field == _META_INNER:
            index, group = _inner_group(_message(value))
            count += len(group)
            if count > MAX_INNER:
                raise ProtoError("too_many_inner")
            inner.append((index, group))
        elif field == _META_LOADED_WRITABLE:
            writable.append(_pubkey(value))
        elif field == _META_LOADED_READONLY:
            readonly.append(_pubkey(value))
    return failed, (None if logs_none and not logs else logs), inner, writable, readonly


def _inner_group(body: memoryview) -> tuple[int, list[InnerInstruction]]:
    index = 0
    group: list[InnerInstruction] = []
    for field, _, value in _fields(body):
        if field == 1:
            index = _int(value)
        elif field == 2:
            if len(group) >= MAX_INNER:
                raise ProtoError("too_many_inner")
            group.append(_instruction(_message(value)))
    return index, group


def _instruction(body: memoryview) -> InnerInstruction:
    program, accounts, data = 0, b"", b""
    for number, _, part in _fields(body):
        if number == 1:
            program = _int(part)
        elif number == 2:
            accounts = bytes(_message(part))
        elif number == 3:
            data = bytes(_message(part))
    return InnerInstruction(program, accounts, data)


__all__ = [
    "COMMITMENTS",
    "SLOT_DEAD",
    "InnerInstruction",
    "Other",
    "Ping",
    "Pong",
    "ProtoError",
    "Slot",
    "Transaction",
    "Update",
    "decode_update",
    "ping_request",
    "subscribe_request",
]
