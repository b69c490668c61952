"""Counters kept by the client, read by whoever asks (``client.stats()``, the Prometheus collector).

Each counter has one writer (its connection's thread, or the delivery lock holder), so the hot
path pays for an integer increment and nothing else; metrics are built from these at scrape time.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Seconds. Event delay spans network + provider lag; heartbeat RTT is usually milliseconds.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A live event's delay (local receipt minus the provider's timestamp) outside this window says
# more about the timestamp than about the network: seconds sent where milliseconds are due (a
# delay of decades), a replayed or broken clock, or a provider clock ahead of ours. Such events
# are counted by reason and kept out of the delay histogram. Within the window a slightly
# negative delay (clocks a little apart) still counts as 0.
DELAY_FUTURE_TOLERANCE = 1.0
DELAY_PAST_LIMIT = 3600.0
IMPLAUSIBLE_REASONS = ("future", "past")


class Histogram:
    """A fixed-bucket histogram (Prometheus semantics: ``le`` upper bounds, plus +Inf)."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out

    def quantile(self, q: float) -> float | None:
        """An upper bound for the q-quantile (the bucket it falls in)."""
        if not self.count:
            return None
        target, running = q * self.count, 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            if running >= target:
                return bound
        return float("inf")


@dataclass
class ConnectionStats:
    """One connection slot (it keeps its stats across reconnects)."""

    index: int
    state: str = "idle"
    state_since: float = field(default_factory=time.time)
    attempts: int = 0
    connects: int = 0
    disconnects: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reason, close code or "")
    frames: int = 0
    bytes: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)  # well-formed frames left out on purpose, by reason
    pings_sent: int = 0
    pongs: int = 0
    rtt: Histogram = field(default_factory=lambda: Histogram(RTT_BUCKETS))
    last_rtt: float | None = None
    last_frame_at: float | None = None  # epoch seconds
    last_event_at: float | None = None
    first_deliveries: int = 0
    next_attempt_at: float | None = None
    last_error: str | None = None
    # The supervisor's verdict, and only the supervisor writes these (monotonic clock): open, and
    # something arrived within stale_timeout. /readyz, sd_notify, the metrics and Client.ready read it.
    healthy: bool = False
    checked_at: float | None = None  # when the supervisor last judged this slot (monotonic)
    stale_since: float | None = None  # when it found the open socket stale (monotonic); None: not stale
    # Time not open since the first opening (monotonic clock): (seconds of the spells that ended, start
    # of the current one or None). One tuple replaced whole: a reader never sees a spell both ended and running.
    _down: tuple[float, float | None] = field(default=(0.0, None), init=False, repr=False)
    _opened: bool = field(default=False, init=False, repr=False)

    def set_state(self, state: str) -> None:
        # Only the connection's thread calls this (the supervisor's and the client's calls run on it too).
        self.state = state
        self.state_since = time.time()
        total, since = self._down
        if state == "open":
            self._opened = True
            if since is not None:
                self._down = (total + time.monotonic() - since, None)
        elif state == "closed":  # the user closed the client: no longer a disconnect
            if since is not None:
                self._down = (total + time.monotonic() - since, None)
        elif since is None and self._opened:
            self._down = (total, time.monotonic())

    @property
    def down_seconds(self) -> float:
        """Seconds this connection was not open after it first opened (the current spell included)."""
        total, since = self._down
        return total if since is None else total + max(0.0, time.monotonic() - since)

    @property
    def down(self) -> bool:
        """Down now: it has opened before and is not open (nor closed by the user)."""
        return self._down[1] is not None


# The kinds of thread a client runs (metric labels, exported at 0): each one's unexpected end is counted.
THREAD_KINDS = ("connection", "supervisor", "backfill")


@dataclass
class ClientStats:
    provider: str
    capacity: int
    connections: list[ConnectionStats]
    duplicates: int = 0
    dropped: int = 0  # overflow: the oldest queued event made room for a new one
    held: int = 0  # live events waiting behind a backfill
    events: Counter[str] = field(default_factory=Counter)  # kind -> first deliveries
    delay: Histogram = field(default_factory=lambda: Histogram(DELAY_BUCKETS))
    backfill_requests: int = 0
    backfill_events: int = 0
    backfill_failures: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # channel -> rejections
    notices: Counter[str] = field(default_factory=Counter)  # provider error code -> count
    implausible: Counter[str] = field(default_factory=Counter)  # IMPLAUSIBLE_REASONS -> live events
    thread_failures: Counter[str] = field(default_factory=Counter)  # THREAD_KINDS -> unexpected ends
    started_at: float = field(default_factory=time.time)

    def observe_delay(self, delay: float) -> None:
        """One live event's delay in seconds, into the histogram if it is plausible, else counted."""
        if delay < -DELAY_FUTURE_TOLERANCE:
            self.implausible["future"] += 1
        elif delay > DELAY_PAST_LIMIT:
            self.implausible["past"] += 1
        else:
            self.delay.observe(max(0.0, delay))

    @property
    def delivered(self) -> int:
        """Events put on the queue (first deliveries), derived rather than counted twice."""
        return sum(self.events.values())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy for humans and tests."""
        return {
            "provider": self.provider,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "events": dict(self.events),
            "thread_failures": {kind: self.thread_failures[kind] for kind in THREAD_KINDS},
            "backfill": {
                "requests": self.backfill_requests,
                "events": self.backfill_events,
                "failures": self.backfill_failures,
            },
            "rejected": dict(self.rejected),
            "connections": [
                {
                    "index": c.index,
                    "state": c.state,
                    "attempts": c.attempts,
                    "connects": c.connects,
                    "disconnects": {f"{r}:{code}" if code else r: n for (r, code), n in c.disconnects.items()},
                    "frames": c.frames,
                    "malformed": dict(c.malformed),
                    "filtered": dict(c.filtered),
                    # seconds not open since the first opening (events sent meanwhile, where the provider
                    # has no history, are lost), and whether it is down now
                    "down_seconds": c.down_seconds,
                    "down": c.down,
                    "pings_sent": c.pings_sent,
                    "pongs": c.pongs,
                    "first_deliveries": c.first_deliveries,
                    # epoch seconds (None: not yet); the round trip in seconds
                    "state_since": c.state_since,
                    "last_frame_at": c.last_frame_at,
                    "last_event_at": c.last_event_at,
                    "last_rtt": c.last_rtt,
                }
                for c in self.connections
            ],
        }
