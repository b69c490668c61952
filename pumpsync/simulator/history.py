"""A feed's published records, optionally bounded for long-running servers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class History(Generic[T]):
    """Append-only record log addressed by absolute position, so REST cursors stay valid
    when the oldest records are trimmed (``limit``; None keeps everything)."""

    def __init__(self, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("history limit must be at least 1")
        self.limit = limit
        self.items: list[T] = []
        self.base = 0  # absolute position of items[0]

    def append(self, item: T) -> None:
        self.items.append(item)
        # Trim in chunks: deleting from the front of a list costs O(n) each time.
        if self.limit is not None and len(self.items) >= self.limit + max(1, self.limit // 4):
            drop = len(self.items) - self.limit
            del self.items[:drop]
            self.base += drop

    @property
    def total(self) -> int:
        """Records ever published, including trimmed ones."""
        return self.base + len(self.items)

    def since(self, position: int) -> Iterator[tuple[int, T]]:
        """(absolute position, item) from ``position`` on (or the oldest retained one)."""
        for offset in range(max(position - self.base, 0), len(self.items)):
            yield self.base + offset, self.items[offset]

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
