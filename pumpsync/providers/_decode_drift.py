"""Layout drift of the on-chain programs' events: counted by (event, reason) for
``pumpsync_decode_drift_total``, one warning per event kind and hour; and the metrics collector that
also exports the PumpSwap pool book's counts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pumpsync._version import __version__
from pumpsync.providers._borsh import DRIFT_REASONS
from pumpsync.providers._pumpswap_pools import POOLS

log = logging.getLogger("pumpsync.solana")
_DRIFT_EVENTS = (
    "CreateEvent",
    "TradeEvent",
    "CompleteEvent",
    "CompletePumpAmmMigrationEvent",
    "PostCompleteBuyEvent",
    "SweepBondingCurveFeeEvent",
    "BuyEvent",
    "SellEvent",
    "CreatePoolEvent",
    "SweepPoolFeeEvent",
)
_WARN_EVERY_S = 3600.0


class DecodeDrift:
    """Events whose layout did not fit (or was longer than the newest known): counted by (event,
    reason) for ``pumpsync_decode_drift_total``, and one warning per event kind and hour. Process-wide:
    the program is the same for every connection. Never calls out while holding its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._warned: dict[str, float] = {}

    def note(self, event: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            key = (event, reason)
            self._counts[key] = self._counts.get(key, 0) + 1
            last = self._warned.get(event)
            warn = last is None or now - last >= _WARN_EVERY_S
            if warn:
                self._warned[event] = now
        if warn:
            log.warning(
                "the pump.fun program's %s no longer fits the layout pumpsync %s knows (%s): delivered with "
                "the fields that are certain; the program has changed, a newer pumpsync may know it",
                event,
                __version__,
                reason,
            )

    def counts(self) -> dict[tuple[str, str], int]:
        """Every known (event, reason), at 0 where none was seen (a snapshot)."""
        with self._lock:
            seen = dict(self._counts)
        out = {(event, reason): 0 for event in _DRIFT_EVENTS for reason in DRIFT_REASONS}
        out.update(seen)
        return out


DRIFT = DecodeDrift()


class DecodeDriftCollector:
    """``pumpsync_decode_drift_total{event, reason}``: events of the on-chain programs whose layout did
    not fit (delivered with what is certain) or was longer than the newest known; every label at 0.
    And ``pumpsync_pumpswap_pools_total{how}``: the pool book's learnings, look-alikes, evictions."""

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(
            "pumpsync_decode_drift",
            "On-chain events whose layout did not fit the one this pumpsync knows, by event and reason",
            labels=["event", "reason"],
        )
        for (event, reason), n in sorted(DRIFT.counts().items()):
            family.add_metric([event, reason], n)
        yield family
        pools = CounterMetricFamily(
            "pumpsync_pumpswap_pools",
            "PumpSwap pools learned (by how), look-alikes (not a graduation's pool), evictions from the bounded book",
            labels=["how"],
        )
        for how, n in sorted(POOLS.counts().items()):
            pools.add_metric([how], n)
        yield pools
