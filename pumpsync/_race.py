"""The race between sources: who delivered each event first, how much later the others came,
and what each one missed.

Pure bookkeeping, fed by whoever sees every live copy before de-duplication (the delivery,
under its lock) with the event's identity, kind, source index and local receipt time. Nothing
here does I/O or reads a clock unless asked to (:meth:`RaceTracker.expire` without ``now_ms``).

An event is *open* from its first copy until ``window`` seconds later; copies from other
sources within the window count as later copies (their lead is measured), copies after it as
new events. When it closes, its race is decided: the source with the earliest receipt time was
first (ties: the one handed in first), every later copy adds a lead sample for the pair
(first source, later source), and every source that *carries* the kind but sent no copy
missed it. A source carries a kind from the first event of that kind it sent a copy of, on the
race's clock (that event's first arrival from any source), so that a source a second late
misses nothing it was about to send and one that connects late has not missed what came
before. Deciding at close, not at the first copy, lets a copy stamped earlier but handed in
later (another reader thread) still win, and keeps every counter monotonic.

Memory is bounded: at most ``capacity`` open events, keyed by the identity's hash (the strings
are not kept alive); when more arrive within one window, the oldest are decided early
(counted in ``evicted``). Leads go into fixed Prometheus-style buckets plus a reservoir of at
most ``reservoir`` samples per pair, so that medians are exact up to that many samples and a
uniform sample's beyond.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from pumpsync._stats import Histogram
from pumpsync.events import GRADUATION, MIGRATION, NEW_TOKEN, PRICE, TOKEN_ENRICHED, TRADE

# Seconds one source trails another: same-host copies differ by well under a millisecond,
# public feeds by tens to hundreds of milliseconds, a lagging one by seconds.
LEAD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_WINDOW = 10.0
DEFAULT_CAPACITY = 50_000
DEFAULT_RESERVOIR = 1024

# What the summary calls each kind, in the order it reports them.
_NOUNS = {
    NEW_TOKEN: ("launch", "launches"),
    TRADE: ("trade", "trades"),
    GRADUATION: ("graduation", "graduations"),
    MIGRATION: ("migration", "migrations"),
    TOKEN_ENRICHED: ("enrichment", "enrichments"),
    PRICE: ("price update", "price updates"),
}


class LeadStats:
    """How much later one source's copies came than another's: a histogram and a reservoir."""

    __slots__ = ("_rng", "histogram", "samples", "size")

    def __init__(self, size: int, rng: random.Random) -> None:
        self.histogram = Histogram(LEAD_BUCKETS)
        self.samples: list[float] = []
        self.size = size
        self._rng = rng

    def add(self, seconds: float) -> None:
        self.histogram.observe(seconds)
        n = self.histogram.count
        if len(self.samples) < self.size:
            self.samples.append(seconds)
        else:  # reservoir sampling (algorithm R): every sample so far is kept with equal chance
            i = self._rng.randrange(n)
            if i < self.size:
                self.samples[i] = seconds

    @property
    def count(self) -> int:
        return self.histogram.count

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


# The facts two copies of one event must agree on (both given: a source that omits a field does not
# disagree). Amounts within CONFLICT_TOLERANCE of each other (relative) agree: providers round.
CONFLICT_FIELDS = ("sol_amount", "token_amount", "slot", "creator", "initial_buy_sol", "initial_buy_tokens")
CONFLICT_TOLERANCE = 1e-3
_UNREPORTED = 64  # conflicts kept for the next warning


class _Open:
    """One event still within its window: the kind, when it opened and each source's first copy,
    and the facts of the copy handed in first (the one delivered)."""

    __slots__ = ("arrivals", "facts", "kind", "opened", "source")

    def __init__(self, kind: str, opened: float, source: int, facts: tuple[Any, ...] | None) -> None:
        self.kind = kind
        self.opened = opened
        self.source = source
        self.facts = facts
        self.arrivals: dict[int, float] = {source: opened}


def facts(event: Any) -> tuple[Any, ...]:
    """The values of :data:`CONFLICT_FIELDS` of ``event``."""
    return tuple(getattr(event, name, None) for name in CONFLICT_FIELDS)


def differing(first: tuple[Any, ...], other: tuple[Any, ...]) -> tuple[str, ...]:
    """The fields in which two copies disagree."""
    out = []
    for name, a, b in zip(CONFLICT_FIELDS, first, other, strict=True):
        if a is None or b is None or a == b:
            continue
        numbers = isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
        if numbers and abs(a - b) <= CONFLICT_TOLERANCE * max(abs(a), abs(b)):
            continue
        out.append(name)
    return tuple(out)


class RaceTracker:
    """Race statistics over ``sources`` (names; events refer to them by index). Thread-safe."""

    def __init__(
        self,
        sources: Sequence[str],
        *,
        window: float = DEFAULT_WINDOW,
        capacity: int = DEFAULT_CAPACITY,
        reservoir: int = DEFAULT_RESERVOIR,
        seed: int = 0,
    ) -> None:
        if len(set(sources)) != len(sources) or not sources:
            raise ValueError("sources must be distinct names, at least one")
        if window <= 0 or capacity < 1 or reservoir < 1:
            raise ValueError("window must be > 0, capacity and reservoir >= 1")
        self.sources = tuple(sources)
        self.window_ms = window * 1000.0
        self.capacity = capacity
        self._reservoir = reservoir
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._open: dict[int, _Open] = {}  # identity hash -> open event, oldest first
        # Per source: kind -> when the first event it sent a copy of (decided in opening order) first
        # arrived from any source: it carries the kind since then.
        self._carries: list[dict[str, float]] = [{} for _ in self.sources]
        # Decided events, by (source index, kind).
        self.events: Counter[str] = Counter()  # kind -> events decided
        self.first: Counter[tuple[int, str]] = Counter()
        self.missed: Counter[tuple[int, str]] = Counter()
        self.only: Counter[tuple[int, str]] = Counter()  # seen by this source alone, though another carries the kind
        self.leads: dict[tuple[int, int, str], LeadStats] = {}  # (first, later, kind)
        self.evicted = 0  # decided before their window ended, to stay within capacity
        # (field, source whose copy went first, source that disagreed) -> events
        self.conflicts: Counter[tuple[str, int, int]] = Counter()
        self._unreported: list[tuple[str, str, int, int]] = []  # (kind, field, first, second), for a warning
        self.started_ms: float | None = None
        self.last_ms: float | None = None

    # ------------------------------------------------------------------ feeding
    def observe(self, identity: Hashable, kind: str, source: int, at_ms: float, event: Any = None) -> tuple[str, ...]:
        """One live copy of an event from ``source`` (an index into ``sources``), received at ``at_ms``.

        With ``event``, its facts are compared with the copy handed in first: the fields in which
        this source's first copy disagrees are returned (and counted, per field and source pair)."""
        key = hash(identity) or 1
        with self._lock:
            if self.started_ms is None:
                self.started_ms = at_ms
            if self.last_ms is None or at_ms > self.last_ms:
                self.last_ms = at_ms
            entry = self._open.get(key)
            if entry is not None and at_ms - entry.opened < self.window_ms:
                arrivals = entry.arrivals
                fields: tuple[str, ...] = ()
                if source not in arrivals and event is not None and entry.facts is not None:
                    fields = differing(entry.facts, facts(event))
                    for name in fields:
                        self.conflicts[(name, entry.source, source)] += 1
                        if len(self._unreported) < _UNREPORTED:
                            self._unreported.append((kind, name, entry.source, source))
                if source not in arrivals or at_ms < arrivals[source]:
                    arrivals[source] = at_ms
                return fields
            if entry is not None:  # a copy after the window: its event is decided, this one starts anew
                self._decide(self._open.pop(key))
            self._expire(at_ms)
            self._open[key] = _Open(kind, at_ms, source, None if event is None else facts(event))
            if len(self._open) > self.capacity:
                oldest = next(iter(self._open))
                self._decide(self._open.pop(oldest))
                self.evicted += 1
            return ()

    def take_unreported(self) -> list[tuple[str, str, str, str]]:
        """The conflicts not yet warned about, as (kind, field, first source, second source) names."""
        with self._lock:
            taken, self._unreported = self._unreported, []
        names = self.sources
        return [(kind, name, names[a], names[b]) for kind, name, a, b in taken]

    def conflict_counts(self) -> dict[tuple[str, str, str], int]:
        """Conflicts by (field, first source, second source) names, for the metrics."""
        with self._lock:
            names = self.sources
            return {(name, names[a], names[b]): n for (name, a, b), n in self.conflicts.items()}

    def expire(self, now_ms: float | None = None) -> None:
        """Decide the events whose window has ended by ``now_ms`` (default: now)."""
        with self._lock:
            self._expire(time.time() * 1000.0 if now_ms is None else now_ms)

    def finish(self) -> None:
        """Decide every open event now (the stream has ended)."""
        with self._lock:
            while self._open:
                self._decide(self._open.pop(next(iter(self._open))))

    def _expire(self, now_ms: float) -> None:
        horizon = now_ms - self.window_ms
        opened = self._open
        while opened:
            key = next(iter(opened))
            if opened[key].opened > horizon:
                return
            self._decide(opened.pop(key))

    def _decide(self, entry: _Open) -> None:
        kind = entry.kind
        arrivals = entry.arrivals
        first = min(arrivals, key=arrivals.__getitem__)  # dicts keep hand-in order: ties go to the earlier
        start = arrivals[first]
        self.events[kind] += 1
        self.first[(first, kind)] += 1
        carrying = self._carries
        for source, at in arrivals.items():
            # On the race's clock: a late source carried the kind since the first event it sent a copy of.
            carrying[source].setdefault(kind, start)
            if source != first:
                lead = self.leads.get((first, source, kind))
                if lead is None:
                    lead = self.leads[(first, source, kind)] = LeadStats(self._reservoir, self._rng)
                lead.add((at - start) / 1000.0)
        carried_by_another = False
        for source, carries in enumerate(carrying):
            since = carries.get(kind)
            if source in arrivals or since is None or since > start:
                continue
            self.missed[(source, kind)] += 1
            carried_by_another = True
        if carried_by_another and len(arrivals) == 1:
            self.only[(first, kind)] += 1

    # ------------------------------------------------------------------ reading
    @property
    def pending(self) -> int:
        """Events still within their window (not yet decided)."""
        return len(self._open)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of the decided statistics (leads in milliseconds)."""
        with self._lock:
            names = self.sources
            leads: dict[str, dict[str, dict[str, Any]]] = {}
            for (a, b, kind), stats in sorted(self.leads.items()):
                leads.setdefault(f"{names[a]}>{names[b]}", {})[kind] = {
                    "count": stats.count,
                    "median_ms": _ms(stats.median()),
                    "p90_bound_ms": _ms(stats.histogram.quantile(0.9)),
                }
            return {
                "sources": list(names),
                "window_s": self.window_ms / 1000.0,
                "pending": len(self._open),
                "evicted": self.evicted,
                "events": dict(self.events),
                "first": _by_source(names, self.first),
                "missed": _by_source(names, self.missed),
                "only": _by_source(names, self.only),
                "leads": leads,
                "conflicts": {
                    f"{names[a]}>{names[b]}": {
                        name: n for (name, x, y), n in sorted(self.conflicts.items()) if (x, y) == (a, b)
                    }
                    for (a, b) in sorted({(x, y) for (_n, x, y) in self.conflicts})
                },
            }

    def counts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Decided counts for the metrics: ``first``, ``missed`` and ``only``, by (source name, kind)."""
        with self._lock:
            names = self.sources
            return {
                name: {(names[s], kind): n for (s, kind), n in counter.items()}
                for name, counter in (("first", self.first), ("missed", self.missed), ("only", self.only))
            }

    def lead_histograms(self) -> dict[tuple[str, str], Histogram]:
        """Per ordered pair (first source, later source), every kind's leads in one histogram;
        every pair is there, empty ones too."""
        names = self.sources
        with self._lock:
            out = {(a, b): Histogram(LEAD_BUCKETS) for a in names for b in names if a != b}
            for (first, later, _kind), stats in self.leads.items():
                merged = out[(names[first], names[later])]
                merged.counts = [x + y for x, y in zip(merged.counts, stats.histogram.counts, strict=True)]
                merged.count += stats.histogram.count
                merged.sum += stats.histogram.sum
            return out

    def summary(self) -> str:
        """One paragraph for humans: who was first for what share of each kind, by how much, and
        who missed what. Decides nothing: call :meth:`finish` first at the end of a stream."""
        with self._lock:
            return self._summary()

    def _summary(self) -> str:
        names = self.sources
        if not self.events:
            pending = f" ({len(self._open)} still open)" if self._open else ""
            return f"Race between {_join(names)}: no event decided yet{pending}."
        parts = []
        kinds = [k for k in _NOUNS if self.events[k]] + sorted(k for k in self.events if k not in _NOUNS)
        # A kind only one source carries is no race (OpenPump's enrichments): left out.
        kinds = [k for k in kinds if sum(k in carries for carries in self._carries) > 1]
        for kind in kinds:
            total = self.events[kind]
            ranked = sorted(range(len(names)), key=lambda s: (-self.first[(s, kind)], s))
            shares = []
            for source in ranked:
                n = self.first[(source, kind)]
                if not n:
                    continue
                text = f"{names[source]} first for {_percent(n, total)} %"
                leads = [
                    f"{median * 1000.0:.0f} ms over {names[b]}"
                    for (a, b, k), stats in sorted(self.leads.items())
                    if a == source and k == kind and (median := stats.median()) is not None
                ]
                if leads and source == ranked[0]:
                    text += ", median lead " + ", ".join(leads)
                shares.append(text)
            parts.append(f"{_count(total, kind)}: " + "; ".join(shares))
        missed = []
        for source, name in enumerate(names):
            counts = [(kind, self.missed[(source, kind)]) for kind in kinds if self.missed[(source, kind)]]
            if counts:
                missed.append(f"{name} " + ", ".join(_count(n, k) for k, n in counts))
        if not parts:
            return f"Race between {_join(names)}: no kind of event carried by two of them yet."
        text = f"Race between {_join(names)}. " + ". ".join(parts) + ". Missed: " + ("; ".join(missed) or "none")
        only = sum(self.only.values())
        if only:
            text += f"; {only} seen by one source only"
        if self._open:
            text += f" ({len(self._open)} events still open)"
        return text + "."


def _count(n: int, kind: str) -> str:
    one, many = _NOUNS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


def _ms(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return float("inf") if seconds == float("inf") else round(seconds * 1000.0, 3)


def _percent(n: int, total: int) -> str:
    return f"{100.0 * n / total:.0f}"


def _join(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _by_source(names: Sequence[str], counts: Counter[tuple[int, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {name: {} for name in names}
    for (source, kind), n in sorted(counts.items()):
        if n:
            out[names[source]][kind] = n
    return out


__all__ = [
    "CONFLICT_FIELDS",
    "DEFAULT_CAPACITY",
    "DEFAULT_RESERVOIR",
    "DEFAULT_WINDOW",
    "LEAD_BUCKETS",
    "LeadStats",
    "RaceTracker",
]
