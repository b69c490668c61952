"""The gap notices of one client: each gap's range, and what became of it (``Client.gaps()``).

The gap recovery (``_recovery.py``) opens a report when a gap opens, brings it up to date after
each attempt, marks it ``released`` when the hold's deadline let the live stream go on, and closes
it ``recovered``, ``partial`` or ``lost``. Each change that the user should hear of goes to one
upward report point, the owner's ``on_gap`` listener (called with no lock held), and a warning
(at most one a minute per kind) names every gap released, partial or lost.

Lock order: the recovery's condition, then this ledger's lock, then the delivery's lock
(``release`` expires the hold under this lock, so that a consumer who sees a released live event
also sees its gap marked).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pumpsync._text import WarningGate
from pumpsync.providers.spec import Position

log = logging.getLogger("pumpsync.backfill")

Outcome = Literal["pending", "recovered", "partial", "lost"]
OUTCOMES: tuple[Outcome, ...] = ("pending", "recovered", "partial", "lost")
_REPORTS = 100  # reports kept (the oldest closed ones go first; pending ones are always kept)


@dataclass(frozen=True)
class GapReport:
    """One gap as the user sees it: what was missed, and what became of it.

    ``outcome``: ``pending`` (being fetched, or to be retried), ``recovered`` (every event back),
    ``partial`` (some back, some counted lost by the history source), ``lost`` (nothing came
    back). ``since_slot`` is where the gap begins (inclusive; None for a source without slots or
    history: then ``opened_at``..``closed_at`` is the range), ``until_slot`` the newest slot the
    history brought back (None: none yet). ``source``: the source's name (its provider, or the
    name given with ``sources=``). ``released``: the live stream was let go on at the
    hold's deadline, before the gap was filled (its events then arrive late). ``lost`` counts the
    items the history source counted lost during the recovery; ``deferred`` the live events let
    go while held (past the queue size) for the history to bring back."""

    ident: int
    provider: str
    since_slot: int | None
    opened_at: float  # epoch seconds
    outcome: Outcome = "pending"
    until_slot: int | None = None
    recovered: int = 0  # new events the history brought
    lost: int = 0
    deferred: int = 0
    attempts: int = 0
    released: bool = False
    closed_at: float | None = None  # epoch seconds
    reason: str = ""  # the last failure, if any (safe to show: no key)
    source: str = ""


# ``(report) -> None``: the owner's hook for gap notices (released, closed). Called from the
# recovery's threads with no lock held; what it raises is logged and ignored.
GapListener = Callable[[GapReport], None]


# The key of a stream-wide source's one position (it serves every channel at once).
STREAM = "*"


@dataclass(frozen=True)
class Gap:
    """What a client must fetch again: per channel (``STREAM`` for a stream-wide source), the
    position to start from (inclusive), and each channel's filters."""

    positions: Mapping[str, Position]
    filters: Mapping[str, Mapping[str, Any]]

    def merge(self, other: Gap) -> Gap:
        """The union of two gaps: per key, the earlier position."""
        positions = dict(self.positions)
        for key, position in other.positions.items():
            if key not in positions or position < positions[key]:
                positions[key] = position
        return Gap(positions, {**other.filters, **self.filters})

    def describe(self) -> str:
        return ", ".join(f"{key} since slot {p.slot}" for key, p in self.positions.items())


@dataclass(frozen=True)
class Counts:
    """A report and the counters when an attempt began: the attempt's share is the difference."""

    report: GapReport
    events: int  # the delivery's backfill_events
    lost: int  # the source's lost()
    deferred: int  # the delivery's deferred


@dataclass
class Pending:
    gap: Gap
    awaiting: set[str]  # channels whose acknowledgement the fetch waits for
    start_by: float  # monotonic: fetch anyway by then (a server that never acknowledges)
    index: int | None  # the connection whose session opened the gap (None: not tied to one)
    ident: int  # its report


class GapLedger:
    """The reports of one client's gaps. Thread-safe; reports are replaced whole (readers copy)."""

    def __init__(self, provider: str, on_gap: GapListener | None = None, source: str = "") -> None:
        self.provider = provider
        self.source = source or provider
        self._on_gap = on_gap
        self._lock = threading.Lock()
        self._reports: dict[int, GapReport] = {}
        self._next = 0
        self._counts: Counter[str] = Counter()  # closed gaps by outcome, holds released, other events
        self._warnings = WarningGate()

    # -- reading
    @property
    def pending(self) -> bool:
        with self._lock:
            return any(report.outcome == "pending" for report in self._reports.values())

    def gaps(self) -> list[GapReport]:
        with self._lock:
            return list(self._reports.values())

    def get(self, ident: int) -> GapReport | None:
        with self._lock:
            return self._reports.get(ident)

    def counts(self) -> dict[str, int]:
        """Gaps by outcome (``pending``: open now), holds released, and the other counted events."""
        with self._lock:
            counts = dict(self._counts)
            counts.update({outcome: self._counts[outcome] for outcome in OUTCOMES})
            counts["released"] = self._counts["released"]
            counts["pending"] = sum(1 for r in self._reports.values() if r.outcome == "pending")
        return counts

    def count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

    # -- writing
    def open(self, since_slot: int | None) -> int:
        with self._lock:
            self._next += 1
            ident = self._next
            self._reports[ident] = GapReport(ident, self.provider, since_slot, time.time(), source=self.source)
            excess = len(self._reports) - _REPORTS
            if excess > 0:
                for old in [i for i, r in self._reports.items() if r.outcome != "pending"][:excess]:
                    del self._reports[old]
        return ident

    def update(self, ident: int, **changes: object) -> GapReport | None:
        with self._lock:
            report = self._reports.get(ident)
            if report is None:
                return None
            report = self._reports[ident] = replace(report, **changes)  # type: ignore[arg-type]
            return report

    def drop(self, ident: int) -> None:
        """The gap was merged into another (whose report goes on)."""
        with self._lock:
            self._reports.pop(ident, None)

    def close(self, ident: int, outcome: Outcome, reason: str = "") -> None:
        with self._lock:
            report = self._reports.get(ident)
            if report is None or report.outcome != "pending":
                return
            report = replace(report, outcome=outcome, closed_at=time.time(), reason=reason or report.reason)
            self._reports[ident] = report
            self._counts[outcome] += 1
        where = "before the first event" if report.since_slot is None else f"from slot {report.since_slot}"
        if outcome == "recovered":
            log.info("gap %s recovered: %d events", where, report.recovered)
        else:
            self.warn(
                f"gap_{outcome}",
                f"gap {where} {outcome}: {report.recovered} events recovered, "
                f"{report.lost} counted lost, {report.deferred} live events let go for it"
                + (f" ({reason})" if reason else ""),
            )
        self._notify(report)

    def release(self, expire: Callable[[], int], deadline: float) -> None:
        """``expire()`` the hold (how many live events it held; < 0: it had ended) and mark every
        pending gap released, at once under the lock; then say so."""
        with self._lock:
            held = expire()
            if held < 0:
                return
            self._counts["released"] += 1
            released: list[GapReport] = []
            for ident, report in list(self._reports.items()):
                if report.outcome == "pending" and not report.released:
                    released.append(replace(report, released=True))
                    self._reports[ident] = released[-1]
        self.warn(
            "released",
            f"gap recovery did not finish within gap_deadline={deadline:g} s: {held} held live events "
            "go on now; the gap is still being fetched (its events arrive late) and is reported",
        )
        for report in released:
            self._notify(report)

    def warn(self, key: str, message: str) -> None:
        """A warning, at most one a minute per ``key`` (with the number held back meanwhile)."""
        held_back = self._warnings.allow(key)
        if held_back is not None:
            log.warning("%s%s", message, f" (and {held_back} more like it)" if held_back else "")

    def _notify(self, report: GapReport) -> None:
        listener = self._on_gap
        if listener is None:
            return
        try:
            listener(report)
        except Exception as exc:  # the owner's hook must not end the recovery
            log.warning("gap listener failed: %s", type(exc).__name__)


__all__ = ["OUTCOMES", "STREAM", "Counts", "Gap", "GapLedger", "GapListener", "GapReport", "Outcome", "Pending"]
