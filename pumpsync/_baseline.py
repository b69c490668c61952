"""Where the stream went live, for an outage before anything was delivered.

A gap starts at the newest position delivered. Before the first event there is none: a filtered,
quiet subscription (one mint's trades) can stay so for hours, and an outage then would lose its
events without a word. So when the first channel goes live, the recovery thread asks the history
source where the chain is now (its optional ``head(stop)``: Solana's ``getSlot``) and keeps that,
less the slots that can have passed between going live and the answer. A source that cannot
tell (Anaxer's REST lists are addressed by the slots of their events only) makes such a gap
*lost*, with the reason: counted and reported, never silent.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from pumpsync._gaps import Gap
from pumpsync.providers.spec import HistoryError, Position

# No slot is shorter than this (Solana's target is 400 ms): the margin taken off the answer covers
# every slot that can have begun between going live and the answer.
_MIN_SLOT_SECONDS = 0.35
_EXTRA_SLOTS = 2  # and the slot in progress on either side
# The position of a gap opened while the answer is still awaited (the recovery thread resolves it).
UNKNOWN = Position(-1)


class Baseline:
    """The position the stream went live at. Thread-safe: connection threads report going live,
    the recovery thread asks the source (with no lock held) and resolves gaps against it."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._live_at: float | None = None  # monotonic; guarded by _lock
        self._asked = False  # guarded by _lock
        self._position: Position | None = None  # guarded by _lock
        self._reason = ""  # why there is no position (once asked); guarded by _lock

    def went_live(self) -> bool:
        """A channel was acknowledged; True the first time (the recovery thread should ask)."""
        with self._lock:
            if self._live_at is not None:
                return False
            self._live_at = time.monotonic()
            return True

    @property
    def wanted(self) -> bool:
        """Live, and the source not asked yet."""
        with self._lock:
            return self._live_at is not None and not self._asked

    def position(self) -> tuple[Position | None, str]:
        """The position (None: not known) and, if none, why."""
        with self._lock:
            if self._position is not None:
                return self._position, ""
            return None, self._reason if self._asked else "the current slot is still being asked for"

    def look_up(self, stop: threading.Event) -> None:
        """Ask the source once (the recovery thread; a network call: no lock held)."""
        with self._lock:
            if self._asked or self._live_at is None:
                return
            live_at = self._live_at
        head = getattr(self._source, "head", None)
        position: Position | None = None
        if not callable(head):
            reason = "nothing had arrived before the outage, and the provider's history cannot tell the current slot"
        else:
            try:
                answer = head(stop)
            except Exception as exc:  # HistoryError, or whatever a hostile answer caused: no position
                problem = str(exc) if isinstance(exc, HistoryError) else f"unexpected {type(exc).__name__}"
                answer = None
                reason = f"nothing had arrived before the outage, and the current slot was not had: {problem}"
            else:
                reason = "nothing had arrived before the outage, and the history source did not tell the current slot"
            if isinstance(answer, Position) and answer.slot >= 0:
                margin = math.ceil((time.monotonic() - live_at) / _MIN_SLOT_SECONDS) + _EXTRA_SLOTS
                position, reason = Position(max(0, answer.slot - margin)), ""
        with self._lock:
            self._asked, self._position, self._reason = True, position, reason

    def start(self) -> Position | None:
        """Where a gap begins when nothing was delivered: the position (UNKNOWN while the source is
        asked, or if it cannot tell: :meth:`resolve` then decides); None if no session was ever
        live (there was nothing to miss)."""
        with self._lock:
            if self._live_at is None:
                return None
            return self._position or UNKNOWN

    def resolve(self, gap: Gap) -> tuple[Gap | None, str]:
        """``gap`` with its UNKNOWN positions made the baseline (the same object if it has none);
        None, and why, if there is no baseline."""
        if all(p.slot >= 0 for p in gap.positions.values()):
            return gap, ""
        position, why = self.position()
        if position is None:
            return None, why
        return Gap({key: position if p.slot < 0 else p for key, p in gap.positions.items()}, gap.filters), ""
