"""JSON Lines sinks: standard output (the default) and an append-only file.

Both write whole lines or nothing: the file is cut back to its last whole line after a failed
write (a full disk) and when it is opened (a crash mid-write), so it is always valid JSON Lines
and holds exactly the events counted as written.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import time
from pathlib import Path
from typing import Any

from pumpsync.daemon.sinks.base import PartialWrite, Sink, event_json
from pumpsync.events import Event

log = logging.getLogger("pumpsync.sinks")

_TAIL_CHUNK = 65536


class StdoutSink(Sink):
    """JSON Lines on standard output; a reader that stops reading fails the write after ``write_timeout``."""

    kind = "stdout"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._broken = False
        self._pending = b""  # the rest of a line cut short by the deadline: it goes out first

    def write(self, batch: list[Event]) -> int | None:
        if self._broken:
            raise BrokenPipeError("standard output is closed")
        lines = [(line + "\n").encode("utf-8") for line in self.encode_each(batch, event_json)]
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): plain writes
            sys.stdout.write(b"".join(lines).decode("utf-8"))
            sys.stdout.flush()
            return len(lines)
        deadline = time.monotonic() + self.write_timeout
        done = 0
        try:
            sys.stdout.flush()
            self._pending = _send(fd, self._pending, deadline)
            for line in lines:
                if self._pending:
                    raise PartialWrite(f"standard output took no more for {self.write_timeout:g} s", done)
                self._pending = _send(fd, line, deadline)
                done += 1  # a line begun is finished before anything else goes out
        except BrokenPipeError:
            # The reader went away (`pumpsync daemon | head`). Point stdout at /dev/null so that
            # the interpreter's final flush does not print a traceback at exit.
            self._broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            raise
        if self._pending:
            raise PartialWrite(f"standard output took no more for {self.write_timeout:g} s", done)
        return len(lines)


def _send(fd: int, data: bytes, deadline: float) -> bytes:
    """Write ``data`` to ``fd`` until ``deadline`` (monotonic); what is left unwritten.

    A write of at most PIPE_BUF bytes to a pipe that polls writable does not block, so a reader
    that stops reading costs at most the deadline, never the thread.
    """
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if poller.poll(max(1, int(remaining * 1000))):
            view = view[os.write(fd, view[: select.PIPE_BUF]) :]
    return bytes(view)


class FileSink(Sink):
    """Appends one JSON object per line; reopens the path on SIGHUP so logrotate can move the file."""

    kind = "jsonl"

    def __init__(self, name: str, path: str | os.PathLike[str], *, fsync: bool = False, **options: Any) -> None:
        super().__init__(name, **options)
        self.path = Path(path)
        self.fsync = fsync
        self._fd: int | None = None

    def describe(self) -> str:
        return f"jsonl {self.path}"

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            torn = _cut_torn_tail(fd)
        except OSError:
            os.close(fd)
            raise
        if torn:
            log.warning("sink %s: removed a torn last line (%d bytes) from %s", self.name, torn, self.path)
        self._fd = fd

    def write(self, batch: list[Event]) -> int:
        if self._fd is None:  # a failed reopen: try again
            self.open()
        fd = self._fd
        assert fd is not None
        lines = list(self.encode_each(batch, event_json))
        data = memoryview("".join(line + "\n" for line in lines).encode("utf-8"))
        start = os.fstat(fd).st_size  # O_APPEND: where this batch begins
        try:
            while data:
                data = data[os.write(fd, data) :]
            if self.fsync:
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, start)  # no torn line, and nothing on disk that is counted as dropped
            except OSError:
                pass  # cut on the next open
            raise
        return len(lines)

    def reopen(self) -> None:
        self.close_resources()
        self.open()

    def close_resources(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _cut_torn_tail(fd: int) -> int:
    """Truncate the file after its last newline; the number of bytes removed."""
    size = end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end < size:
        os.ftruncate(fd, end)
    return size - end
