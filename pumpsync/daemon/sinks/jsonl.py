"""JSON Lines sinks: standard output (the default) and an append-only file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from pumpsync.daemon.sinks.base import Sink, event_json
from pumpsync.events import Event


class StdoutSink(Sink):
    kind = "stdout"

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self._broken = False

    def write(self, batch: list[Event]) -> None:
        if self._broken:
            raise BrokenPipeError("standard output is closed")
        try:
            sys.stdout.write("".join(event_json(event) + "\n" for event in batch))
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`pumpsync daemon | head`). Point stdout at /dev/null so that
            # the interpreter's final flush does not print a traceback at exit.
            self._broken = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
            raise


class FileSink(Sink):
    """Appends one JSON object per line; reopens the path on SIGHUP so logrotate can move the file."""

    kind = "jsonl"

    def __init__(self, name: str, path: str | os.PathLike[str], *, fsync: bool = False, **options: Any) -> None:
        super().__init__(name, **options)
        self.path = Path(path)
        self.fsync = fsync
        self._file: TextIO | None = None

    def describe(self) -> str:
        return f"jsonl {self.path}"

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, batch: list[Event]) -> None:
        if self._file is None:  # a failed reopen: try again
            self.open()
        assert self._file is not None
        self._file.write("".join(event_json(event) + "\n" for event in batch))
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def reopen(self) -> None:
        self.close_resources()
        self.open()

    def close_resources(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()
