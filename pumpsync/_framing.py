"""Reading WebSocket frames from a byte stream (RFC 6455, server-to-client), sans I/O.

websocket-client does the handshake, TLS, proxies and sending; receiving goes through this
decoder instead, because websocket-client makes 2-3 ``recv`` calls per frame while a buffered
reader makes one per 64 KiB. Bytes in, whole messages out.
"""

from __future__ import annotations

from collections.abc import Iterator

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_CONTROL = (OP_CLOSE, OP_PING, OP_PONG)
_DATA = (OP_TEXT, OP_BINARY)


class ProtocolError(Exception):
    """The peer broke the framing rules; the connection must be closed (1002)."""


class FrameTooLarge(Exception):
    """A message exceeds the size cap; the connection must be closed (1009)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the {limit}-byte cap")
        self.size = size


class FrameDecoder:
    """Accumulates bytes and yields ``(opcode, payload)`` for each complete message.

    Fragmented messages are reassembled; control frames (close, ping, pong) are yielded as
    they come, even between fragments.
    """

    __slots__ = ("_buf", "_fragment_op", "_fragment_size", "_fragments", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = b""
        self._fragments: list[bytes] = []
        self._fragment_op = 0
        self._fragment_size = 0

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        buf = self._buf + data if self._buf else data
        pos = 0
        end = len(buf)
        max_size = self.max_size
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                b1 = buf[pos + 1]
                length = b1 & 0x7F
                if length == 126:
                    if end - pos < 4:
                        break
                    length = buf[pos + 2] << 8 | buf[pos + 3]  # no slice, no call: most frames are 126-65535 bytes
                    start = pos + 4
                elif length == 127:
                    if end - pos < 10:
                        break
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    start = pos + 10
                else:
                    start = pos + 2
                if b1 & 0x80 or b0 & 0x70:  # one test for the common case, then which rule
                    if b1 & 0x80:
                        raise ProtocolError("the server masked a frame")
                    raise ProtocolError("reserved bits set without an extension")
                stop = start + length
                if (b0 == 0x81 or b0 == 0x82) and not self._fragments:  # FIN + text/binary, no message open
                    if length > max_size:
                        raise FrameTooLarge(length, max_size)
                    if stop > end:
                        break
                    pos = stop
                    yield b0 & 0x0F, buf[start:stop]  # the common case: one frame, one message
                    continue
                if length > max_size or self._fragment_size + length > max_size:
                    raise FrameTooLarge(self._fragment_size + length, max_size)
                if stop > end:
                    break
                pos = stop
                message = self._assemble(b0 & 0x0F, bool(b0 & 0x80), buf[start:stop])
                if message is not None:
                    yield message
        finally:
            self._buf = buf[pos:]

    def _assemble(self, opcode: int, fin: bool, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in _CONTROL:
            if not fin or len(payload) > 125:
                raise ProtocolError("control frames must be whole and at most 125 bytes")
            return opcode, payload
        if opcode in _DATA:
            if self._fragments:
                raise ProtocolError("a new message began inside a fragmented one")
            self._fragment_op = opcode
        elif opcode == OP_CONT:
            if not self._fragments:
                raise ProtocolError("a continuation frame with no message to continue")
        else:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        self._fragments.append(payload)
        self._fragment_size += len(payload)
        if not fin:
            return None
        message = b"".join(self._fragments)
        self._fragments = []
        self._fragment_size = 0
        return self._fragment_op, message

    @property
    def buffered(self) -> int:
        return len(self._buf) + self._fragment_size


def close_code(payload: bytes) -> int | None:
    """The status code of a close frame's payload, if it has one."""
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


def close_reason(payload: bytes) -> str:
    return payload[2:].decode("utf-8", "replace")
