"""A gRPC call's end as one frame for the dialect, and what Yellowstone's statuses mean.

The frame starts with a zero byte: a valid protobuf message never does (field number 0 is invalid).
Then the status code (one byte) and its redacted text. A server message that does start with a zero
byte is handed on by the transport as ``FORGED`` (code 255): one malformed message, never a status.
"""

from __future__ import annotations

import re

OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT = 0, 1, 2, 3
PERMISSION_DENIED, RESOURCE_EXHAUSTED, OUT_OF_RANGE = 7, 8, 11
INTERNAL, UNAVAILABLE, UNAUTHENTICATED = 13, 14, 16
_MARK = b"\x00"
NOT_A_STATUS = 0xFF
FORGED = _MARK + bytes([NOT_A_STATUS])  # what a server message beginning with a zero byte becomes
# yellowstone-grpc-geyser/src/grpc.rs (0c3f357): Status::out_of_range("broadcast from {from_slot} is
# not available, last available: {slot}") where slot is the oldest the replay still has;
# Status::internal("from_slot is not supported") where the server keeps no replay.
_FIRST_AVAILABLE = re.compile(r"last available: (\d{1,20})")


def status_frame(code: int, details: str) -> bytes:
    return _MARK + bytes([min(code, 0xFE)]) + details.encode("utf-8", "replace")[:1024]


def read_status(frame: bytes) -> tuple[int, str] | None:
    """``(code, details)`` of a status frame, or None for a message."""
    if frame[:1] != _MARK or len(frame) < 2:
        return None
    return frame[1], frame[2:].decode("utf-8", "replace")


def replay_refused(code: int, details: str) -> tuple[bool, int | None]:
    """Whether the status says ``from_slot`` could not be served, and the first slot it still has."""
    lowered = details.lower()
    if code == OUT_OF_RANGE or (code in (INTERNAL, INVALID_ARGUMENT) and "from_slot" in lowered):
        match = _FIRST_AVAILABLE.search(details)
        return True, int(match.group(1)) if match else None
    return False, None


def oversized(code: int, details: str) -> bool:
    """grpcio's receive limit: RESOURCE_EXHAUSTED "Received message larger than max (N vs. M)"."""
    return code == RESOURCE_EXHAUSTED and "larger than max" in details.lower()


__all__ = ["read_status", "replay_refused", "status_frame"]
