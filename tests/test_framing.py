"""The frame decoder, byte by byte."""

from __future__ import annotations

import struct

import pytest

from pumpsync._framing import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    FrameDecoder,
    FrameTooLarge,
    ProtocolError,
    close_code,
)


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = False) -> bytes:
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", b0, n | (0x80 if mask else 0))
    elif n < 65536:
        header = struct.pack("!BBH", b0, 126, n)
    else:
        header = struct.pack("!BBQ", b0, 127, n)
    return header + (b"\0\0\0\0" if mask else b"") + payload


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 300_000])
def test_lengths(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    assert list(FrameDecoder(1 << 20).feed(frame(OP_TEXT, data))) == [(OP_TEXT, data)]


def test_split_anywhere() -> None:
    stream = frame(OP_TEXT, b"hello") + frame(OP_BINARY, b"x" * 200) + frame(OP_TEXT, b"world")
    for cut in range(len(stream)):
        d = FrameDecoder(1000)
        out = list(d.feed(stream[:cut])) + list(d.feed(stream[cut:]))
        assert out == [(OP_TEXT, b"hello"), (OP_BINARY, b"x" * 200), (OP_TEXT, b"world")]
        assert d.buffered == 0


def test_fragments_with_control_frame_between() -> None:
    d = FrameDecoder(1000)
    stream = frame(OP_TEXT, b"hel", fin=False) + frame(OP_PING, b"p") + frame(0, b"lo", fin=False) + frame(0, b"!")
    assert list(d.feed(stream)) == [(OP_PING, b"p"), (OP_TEXT, b"hello!")]


def test_too_large_single_and_fragmented() -> None:
    with pytest.raises(FrameTooLarge):
        list(FrameDecoder(100).feed(frame(OP_TEXT, b"x" * 101)[:4]))  # refused from the header alone
    d = FrameDecoder(100)
    with pytest.raises(FrameTooLarge):
        list(d.feed(frame(OP_TEXT, b"x" * 60, fin=False) + frame(0, b"x" * 60)))


@pytest.mark.parametrize(
    "bad",
    [
        frame(OP_TEXT, b"x", mask=True),
        bytes([0x80 | 0x40 | OP_TEXT, 1]) + b"x",  # RSV1 without an extension
        frame(0, b"x"),  # continuation of nothing
        frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"),  # new message inside a fragmented one
        frame(OP_TEXT, b"", fin=False) + frame(OP_TEXT, b"b"),  # ... whose first fragment was empty
        frame(OP_PING, b"x", fin=False),
        frame(0x3, b""),  # reserved opcode
    ],
)
def test_protocol_errors(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(FrameDecoder(1000).feed(bad))


def test_close_code() -> None:
    assert close_code(struct.pack("!H", 4001) + b"bye") == 4001
    assert close_code(b"") is None
    assert list(FrameDecoder(10).feed(frame(OP_CLOSE, b"\x03\xe8"))) == [(OP_CLOSE, b"\x03\xe8")]
