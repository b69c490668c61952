"""The geyser source's own counts, process-wide (like the decoder's drift counts), for the metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

NAMES = {
    "pings": "Server pings answered with a ping-only request",
    "replays": "Sessions that resumed with from_slot (the server replays what was missed)",
    "replayed_slots": "Slots the server sent again after a resume (the overlap, de-duplicated)",
    "replayed_transactions": "Transactions of the overlap dropped as already delivered",
    "replays_refused": "Resumes the server refused (its replay window no longer reached from_slot)",
    "gaps_filled_rpc": "Gaps beyond the replay window filled from RPC history (rpc_url)",
    "gaps_lost": "Gaps beyond the replay window with no rpc_url to fill them (reported lost)",
    "dead_slots": "Slots reported DEAD at commitment processed whose held events were dropped",
    "dead_slot_events": "Events dropped because their slot was reported DEAD",
}


class Counts:
    """Counters by name; every name at 0 from the start. Never calls out under its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(NAMES, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


COUNTS = Counts()


class GeyserCollector:
    """``pumpsync_geyser_<name>_total``: the geyser source's counts, every one exported at 0."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        counts = COUNTS.snapshot()
        for name, help_text in NAMES.items():
            family = CounterMetricFamily(f"pumpsync_geyser_{name}", help_text)
            family.add_metric([], counts[name])
            yield family


__all__ = ["COUNTS", "NAMES", "Counts", "GeyserCollector"]
