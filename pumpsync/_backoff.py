"""Reconnect delays: exponential, capped, with full jitter."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

# A server's Retry-After is honoured up to this many seconds (a hostile value must not park us for days).
RETRY_AFTER_CAP = 600.0


class Backoff:
    """``delay()`` draws uniformly from ``[0, min(cap, initial * 2**attempt)]`` (AWS "full jitter"),
    so that many clients (or our own redundant connections) do not reconnect in lockstep.
    ``reset()`` after a connection has been healthy for a while."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        return float(min(self.cap, self.initial * (2.0 ** min(self.attempt, 62))))

    def delay(self, floor: float = 0.0) -> float:
        """The next delay; at least ``floor`` (rate limits), never more than ``max(cap, floor)``."""
        value = self._rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        return max(value, floor)

    def reset(self) -> None:
        self.attempt = 0


def retry_after(header: str | None, fallback: float) -> float:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), else ``fallback``; capped."""
    if not header:
        return fallback
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return fallback
    if seconds != seconds:  # NaN
        return fallback
    return min(max(0.0, seconds), RETRY_AFTER_CAP)
