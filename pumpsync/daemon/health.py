"""What the daemon tells systemd: a one-line status, and whether its machinery is sound.

"Sound" is not "connected": a provider outage is handled by reconnecting, and restarting the
process would not help. The watchdog is about our own threads: the client's supervisor (it
schedules every reconnect), the dispatcher, the sinks and the metrics server must be alive,
and the supervisor must be keeping its appointments (it looks at every connection at least
once a second, and a socket it found stale is closed soon after).

Which connections are healthy is the supervisor's verdict (monotonic clock), read from the
connection stats; nothing here compares wall-clock timestamps, so a clock step cannot trip
the watchdog.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pumpsync.client import Client
from pumpsync.daemon.dispatch import Dispatcher
from pumpsync.daemon.sinks import Sink
from pumpsync.metrics import MetricsServer

_GRACE = 15.0  # seconds the supervisor may lag behind its own schedule before we call it stuck
_DISPATCH_LAG = 10.0  # the dispatcher wakes every 0.25 s; this long without a tick is a hang


def machinery_problem(
    client: Client, dispatcher: Dispatcher, sinks: Sequence[Sink], metrics: MetricsServer | None
) -> str | None:
    """None when every part is working; else what is wrong (withholds WATCHDOG=1)."""
    if client.error is not None:
        return f"the client stopped: {client.error}"
    if not client.supervisor_alive:
        return "the client's supervisor thread has ended"
    now = time.monotonic()
    for conn in client.raw_stats.connections:
        checked = conn.checked_at
        if checked is not None and now - checked > _GRACE:
            return f"connection {conn.index}: the supervisor has not looked at it for {now - checked:.0f} s"
        stale = conn.stale_since
        if stale is not None and now - stale > _GRACE:
            return f"connection {conn.index}: stale socket left open for {now - stale:.0f} s"
    if not dispatcher.alive:
        return "the dispatcher thread has ended"
    if time.monotonic() - dispatcher.last_tick > _DISPATCH_LAG:
        return "the dispatcher is stuck"
    for sink in sinks:
        if not sink.alive:
            return f"sink {sink.name}: its thread has ended"
    if metrics is not None and not metrics.alive:
        return "the metrics server has ended"
    return None


def summary(client: Client, sinks: Sequence[Sink], dispatcher: Dispatcher | None) -> str:
    """One line for ``systemctl status`` (no key, no URL)."""
    stats = client.raw_stats
    healthy = sum(c.healthy for c in stats.connections)
    parts = [
        f"{stats.provider}: {healthy}/{len(stats.connections)} connections healthy",
        f"{dispatcher.dispatched if dispatcher else stats.delivered} events",
        f"queue {client.queue.qsize()}/{stats.capacity}",
    ]
    dropped = stats.dropped + sum(s.dropped for s in sinks)
    if dropped:
        parts.append(f"{dropped} dropped")
    failing = [s.name for s in sinks if not s.healthy]
    parts.append(f"sinks failing: {', '.join(failing)}" if failing else "sinks ok")
    return "; ".join(parts)
