"""Sane ranges of the options that size memory: one table for the API, the CLI and the daemon's file.

A value outside them is a :class:`ConfigurationError` when the options are read, not a
``MemoryError`` (or a failure) once the client or the daemon is running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pumpsync.errors import ConfigurationError

# option -> (lowest, highest), whole numbers
RANGES: dict[str, tuple[int, int]] = {
    "queue_size": (1, 10_000_000),  # an Event is ~1 KB: 10 GB at the most
    "dedup_size": (1, 50_000_000),
    "max_frame_size": (1, 256 * 1024 * 1024),
    "buffer": (1, 10_000_000),  # a sink's buffer
    "batch_size": (1, 100_000),  # a sink's batch
    "port": (0, 65_535),  # 0: any free port
    "connections": (1, 1_000),  # a thread and a socket each: a billion must fail when read, not at start
}


def check_range(option: str, value: Any, name: str | None = None) -> None:
    """Raise :class:`ConfigurationError` (naming ``name`` or ``option``) unless ``value`` is in its range."""
    low, high = RANGES[option]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(name or option, f"{value!r} is not a whole number from {low:,} to {high:,}")


def check_ranges(options: Mapping[str, Any]) -> None:
    """:func:`check_range` for each option of ``options`` that has a range and is set."""
    for option, value in options.items():
        if option in RANGES and value is not None:
            check_range(option, value)


__all__ = ["RANGES", "check_range", "check_ranges"]
