"""Gap recovery, one owner: which gaps a client has, and fetching them from the provider's history.

A gap opens when a session starts after an outage (from the newest position delivered), when
``since`` is given (the first session), and when the queue overflowed (from the oldest event
dropped). Live events are held meanwhile (the recovery's :class:`~pumpsync._hold.Hold`). Once every channel of the new
session is acknowledged, the recovery thread fetches the history page by page and releases each
page only when the queue has room for it, so that a gap of any size costs a page of memory and
every event arrives once, whatever the consumer's pace. If the held live events outgrow their
bound, they are let go and the history is paged on past them (another round from where the
last one ended) until it has caught up with the live stream.

No unbounded hold: a hold that has not ended ``gap_deadline`` seconds after it began is released
by the deadline watch (a thread of its own: the recovery thread may be waiting on the history);
the live events go on, and the recovery goes on in the background (its events arrive late,
marked ``backfill``). Every gap is reported (:class:`GapReport`, ``Client.gaps()``): its range,
and whether it was recovered, partly, or lost. A failed recovery is retried (never holding the
live stream again) up to ``_ATTEMPTS`` times. Nothing the history answers can end the recovery
thread: an unexpected error is counted, and the gap handled like any failed fetch.

Lock order: ``GapRecovery._cond``, then the gap ledger's lock (``_gaps.py``), then the delivery's
lock; never the other way round, and no call out (the ``on_gap`` listener) with any of them held.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from pumpsync._baseline import Baseline
from pumpsync._delivery import Delivery
from pumpsync._gaps import STREAM, Counts, Gap, GapLedger, GapListener, GapReport, Outcome, Pending
from pumpsync._hold import Hold, watch_deadline
from pumpsync._logsource import label_threads
from pumpsync._pages import IDLE, Pager, Stopped, slot_key
from pumpsync._secrets import redact
from pumpsync._stats import ClientStats
from pumpsync._threads import join_thread
from pumpsync.config import ClientConfig
from pumpsync.events import Event
from pumpsync.providers.base import Subscription
from pumpsync.providers.spec import HistoryError, HistorySource, Position

log = logging.getLogger("pumpsync.backfill")

_CHUNK = 1000  # events released at a time (at most; fewer for a small queue)
_ATTEMPTS = 5  # fetches of one gap (the first and its retries) before it is reported lost
_REFETCH_BACKLOG = 10_000  # single items waiting to be fetched again; past it they are counted lost
_REFETCH_PASSES = 8  # looks for items asked for again before a hold ends (each fetches what came meanwhile)


class GapRecovery:
    """Owns every gap of one client and the thread that fills them. Thread-safe."""

    def __init__(
        self,
        config: ClientConfig,
        source: HistorySource,
        delivery: Delivery,
        stats: ClientStats,
        subscriptions: Callable[[], list[Subscription]],
        on_gap: GapListener | None = None,
    ) -> None:
        """``subscriptions``: the registry's snapshot (runtime subscribe/unsubscribe; takes no lock);
        ``on_gap``: where each gap notice goes (called with no lock held)."""
        self.config = config
        self.source = source
        self._delivery = delivery
        # The live events held while a gap is fetched: the recovery's own (``_hold.py``).
        self.hold = Hold(delivery.capacity, stats, delivery.merge.lock)
        delivery.attach_hold(self.hold)
        self._stats = stats
        self._subscriptions = subscriptions  # the live registry (runtime subscribe/unsubscribe)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._since_pending = config.since is not None
        self._pending: list[Pending] = []  # guarded by _cond
        # A session ended before its gap was fetched: the next one takes it (and its report).
        self._carried: tuple[Gap, int] | None = None
        # (when, gap, report, attempts so far): only touched by the recovery thread
        self._retries: list[tuple[float, Gap, int, int]] = []
        # Guarded by _cond: single items to fetch again, in order (a dict: a flood of them costs O(1) each).
        self._refetches: dict[tuple[str, int | None], None] = {}
        self.ledger = GapLedger(config.provider, on_gap, source=stats.provider)  # stats.provider: the source's name
        self._baseline = Baseline(source)  # where the stream went live: for an outage before any event
        self._current: int | None = None  # the report of the gap the recovery thread is on (its own)
        chunk = max(1, min(_CHUNK, config.queue_size // 2))
        self._pager = Pager(source, delivery, self.hold, stats, self._stop, chunk)
        self._thread = threading.Thread(target=self._run, name="pumpsync-backfill", daemon=True)
        self._watch = threading.Thread(target=self._watch_holds, name="pumpsync-backfill-deadline", daemon=True)
        label_threads(stats.provider, self._thread, self._watch)  # their log lines name the source

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()
        self._watch.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        ended = join_thread(self._thread, timeout)
        ended = join_thread(self._watch, max(0.0, deadline - time.monotonic())) and ended
        self.source.close()
        return ended

    @property
    def alive(self) -> bool:
        """The recovery thread runs (the supervisor reports it if it ends while the client runs)."""
        return self._thread.is_alive()

    def recoverable(self, channel: str) -> bool:
        return self.source.recoverable(channel)

    # ------------------------------------------------------------------ what the owner reads
    @property
    def settled(self) -> bool:
        """No hold in force and no gap still being recovered (``Client.ready`` says so)."""
        return not self.hold.active and not self.ledger.pending

    def gaps(self) -> list[GapReport]:
        """The gaps of late, oldest first."""
        return self.ledger.gaps()

    def gap_counts(self) -> dict[str, int]:
        """Gaps by outcome (open ones as ``pending``), holds released at their deadline, and the live
        events let go while held (``deferred``: for the history to bring back)."""
        counts = self.ledger.counts()
        return {key: counts.get(key, 0) for key in ("pending", "recovered", "partial", "lost", "released")} | {
            "deferred": self.hold.deferred
        }

    # ------------------------------------------------------------------ reports from connection threads
    def session_opened(self, index: int, resumed: bool) -> None:
        """A session of connection ``index`` opened; ``resumed``: after an outage of the whole client."""
        if not self.config.backfill:
            return
        gap = self._gap(resumed)
        with self._cond:
            carried, self._carried = self._carried, None
            ident = None
            if carried is not None:
                gap = carried[0] if gap is None else gap.merge(carried[0])
                ident = carried[1]
            gap = self._restrict(gap) if gap is not None else None
            if gap is not None and gap.positions:
                ident = self._open(gap) if ident is None else ident
                self._hold_for(gap, index, ident, held=carried is not None)
                return
        if carried is not None:  # carried, and nothing of it is recoverable now: its hold ends
            self._delivery.end_hold()
            self.ledger.close(carried[1], "lost", "nothing recoverable is subscribed any more")

    def _hold_for(self, gap: Gap, index: int, ident: int, held: bool = False) -> None:
        """Hold the live stream for ``gap`` (``held``: a carried gap's hold goes on) and queue its
        fetch (under ``_cond``)."""
        # Live events wait until the gap is back (at most gap_deadline); the fetch starts once every
        # channel is live again (acknowledged), so that its answer reaches past the moment the stream resumed.
        if not held:
            self.hold.begin()
        awaiting = set(gap.filters) if self.source.stream_wide else set(gap.positions)
        start_by = time.monotonic() + max(10.0, 2 * self.config.backoff_max)
        self._pending.append(Pending(gap, awaiting, start_by, index, ident))
        self._cond.notify_all()

    def channel_live(self, index: int, channel: str) -> None:
        """A channel of connection ``index`` was acknowledged (or refused)."""
        with self._cond:
            if self.config.backfill and self._baseline.went_live():  # the first time: where is the chain?
                self._cond.notify_all()
            for pending in self._pending:
                if pending.index == index:
                    pending.awaiting.discard(channel)
                    if not pending.awaiting:
                        self._cond.notify_all()

    def session_ended(self, index: int) -> None:
        """A session ended: a gap it opened but did not start to fetch passes to the next session,
        with its hold: the live events held meanwhile are newer than the gap, so they wait for it
        (ending the hold here let them out before the gap's older events; the hold's deadline
        still bounds the wait)."""
        with self._cond:
            mine = [p for p in self._pending if p.index == index]
            ended = 0  # holds beyond the one the carried gap keeps
            for pending in mine:
                self._pending.remove(pending)
                if self._carried is None:
                    self._carried = (pending.gap, pending.ident)
                else:  # one report for the merged gap, one hold
                    self._carried = (self._carried[0].merge(pending.gap), self._carried[1])
                    self.ledger.drop(pending.ident)
                    ended += 1
        for _ in range(ended):
            self._delivery.end_hold()

    def refetch(self, key: str, slot: int | None) -> bool:
        """Fetch one item again (a frame the provider cut short: a truncated log); False if the
        source cannot fetch single items (the loss then stays counted where it was seen)."""
        if not self.config.backfill or not callable(getattr(self.source, "refetch", None)):
            return False
        with self._cond:
            if (key, slot) in self._refetches:  # redundant connections ask for the same one
                return True
            if len(self._refetches) >= _REFETCH_BACKLOG:  # a flood: bounded, the rest stays counted lost
                self.ledger.count("refetch_overflow")
                return False
            self._refetches[(key, slot)] = None
            self._cond.notify_all()
        return True

    def source_stats(self) -> dict[str, int]:
        """The history source's own counts (losses by reason, rate limits), if it keeps any."""
        stats = getattr(self.source, "stats", None)
        counts = dict(stats()) if callable(stats) else {}
        for outcome, n in self.gap_counts().items():
            counts[f"gaps_{outcome}"] = n
        ledger = self.ledger.counts()
        counts["refetch_overflow"] = ledger.get("refetch_overflow", 0)
        counts["recovery_errors"] = ledger.get("recovery_errors", 0)
        return counts

    def _open(self, gap: Gap) -> int:
        slot = min(gap.positions.values()).slot
        return self.ledger.open(slot if slot >= 0 else None)  # (UNKNOWN: told once resolved)

    def _lost_so_far(self) -> int:
        """What the history source has counted lost (its optional ``lost()``), to take a gap's share."""
        lost = getattr(self.source, "lost", None)
        return int(lost()) if callable(lost) else 0

    # ------------------------------------------------------------------ the deadline watch
    def _watch_holds(self) -> None:
        """Release a hold that outlived ``gap_deadline`` (the recovery thread may be waiting on the history)."""
        expire = self._delivery.expire_hold
        while not self._stop.is_set():
            try:
                watch_deadline(self.hold, self.config.gap_deadline, self._stop, expire, self.ledger.release)
            except Exception as exc:  # never a dead thread (there is nothing here to fail; still)
                self.ledger.count("recovery_errors")
                self.ledger.warn("crash", f"gap deadline watch: unexpected {type(exc).__name__}; going on")
                self._stop.wait(0.25)

    # ------------------------------------------------------------------ what a gap is
    def _gap(self, resumed: bool) -> Gap | None:
        subs = {sub.channel: dict(sub.filters) for sub in self._subscriptions()}
        stream_wide = self.source.stream_wide
        if self._since_pending:
            self._since_pending = False
            start = Position(self.config.since or 0)
            return Gap({STREAM: start} if stream_wide else dict.fromkeys(subs, start), subs)
        if not resumed:
            return None
        if stream_wide:
            newest = self._delivery.newest or self._baseline.start()
            return None if newest is None else Gap({STREAM: newest}, subs)
        # A quiet channel has seen nothing of late: anything of it before the newest slot seen on
        # any channel was delivered live, so start there (no channel has seen anything: the baseline).
        last = dict(self._delivery.last_slot)
        newest_slot = max(last.values(), default=None)
        quiet = Position(newest_slot) if newest_slot is not None else self._baseline.start()
        positions = {ch: Position(last[ch]) if ch in last else quiet for ch in subs}
        return Gap({ch: p for ch, p in positions.items() if p is not None}, subs)

    def _restrict(self, gap: Gap) -> Gap:
        """Only what is subscribed now and recoverable."""
        subs = {sub.channel: dict(sub.filters) for sub in self._subscriptions()}
        filters = {ch: f for ch, f in subs.items() if self.source.recoverable(ch)}
        if self.source.stream_wide:
            return Gap(dict(gap.positions) if filters else {}, filters)
        return Gap({ch: p for ch, p in gap.positions.items() if ch in filters}, filters)

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Stopped:
                return
            except Exception as exc:  # never a dead thread: counted, logged, the gap reported, on with the next
                self._stats.backfill_failures += 1
                self.ledger.count("recovery_errors")
                self.ledger.warn("crash", f"gap recovery: unexpected {type(exc).__name__}: {self._safe(exc)}; going on")
                current, self._current = self._current, None
                if current is not None:  # (a hold it had taken is released by the deadline watch)
                    self.ledger.close(current, "lost", f"unexpected {type(exc).__name__}")
                self._stop.wait(IDLE)

    def _step(self) -> None:
        self._current = None
        if self._baseline.wanted:
            self._baseline.look_up(self._stop)
        pending = self._next_ready()
        if pending is not None:
            self._current = pending.ident
            self._recover(pending.gap, pending.ident, held=True, attempts=0)
            return
        self._refetch_pending()
        now = time.monotonic()
        due = [r for r in self._retries if r[0] <= now]
        if due:
            self._retries.remove(due[0])
            _when, gap, ident, attempts = due[0]
            self._current = ident
            gap = self._restrict(gap)
            if not gap.positions:
                self.ledger.close(ident, "lost", "nothing recoverable is subscribed any more")
                return
            # In the background: the live stream went on when the first attempt failed.
            self._recover(gap, ident, held=False, attempts=attempts)
            return
        overflow = self._overflow_gap()
        if overflow is not None:
            self.hold.begin()
            self._current = self._open(overflow)
            self._recover(overflow, self._current, held=True, attempts=0)

    def _next_ready(self) -> Pending | None:
        """The next gap whose channels are all live (or that waited long enough), else None after a short wait."""
        with self._cond:
            now = time.monotonic()
            for pending in self._pending:
                if not pending.awaiting or now >= pending.start_by:
                    self._pending.remove(pending)
                    return pending
            if self._refetches:
                return None
            wake = min([p.start_by for p in self._pending] + [r[0] for r in self._retries] + [now + 1.0])
            self._cond.wait(max(0.0, min(wake - now, IDLE if self._delivery.dropped_from else 1.0)))
        return None

    def _overflow_gap(self) -> Gap | None:
        """Events dropped on overflow are fetched again (paced, so this does not overflow again)."""
        if not self._delivery.dropped_from:
            return None
        lost = self._delivery.take_overflow_gaps()
        gap = self._restrict(Gap({STREAM: min(lost.values())} if self.source.stream_wide else lost, {}))
        return gap if gap.positions else None

    def _recover(self, gap: Gap, ident: int, held: bool, attempts: int) -> None:
        """Fetch ``gap`` and release it, round after round until caught up; ends the hold it was
        given (``held``), whatever happens; reports the outcome, or schedules a retry."""
        resolved = self._resolve(gap, ident, held)
        if resolved is None:
            return
        gap = resolved
        positions = dict(gap.positions)
        # Per key, the identities released at its newest slot: the next round starts at that slot
        # (inclusive), and by then they may have left the de-duplication window.
        edges: dict[str, tuple[int, set[Any]]] = {}
        attempts += 1
        report = self.ledger.update(ident, attempts=attempts)
        if report is None:  # its report was dropped (never: pending ones are kept); report anew
            ident = self._open(gap)
            report = self.ledger.update(ident, attempts=attempts)
            assert report is not None
        base = Counts(report, self._stats.backfill_events, self._lost_so_far(), self.hold.deferred)
        while True:
            deferrals = self.hold.deferrals
            newest: dict[str, Position] = {}
            try:
                fetched, new = self._pager.round(Gap(positions, gap.filters), newest, edges)
            except Stopped:
                raise
            except Exception as exc:  # HistoryError, or anything a hostile answer caused: the same path
                positions.update(newest)  # what did arrive was released
                self._refetch_into(positions)
                if self._stop.is_set():
                    raise Stopped from None
                self._stats.backfill_failures += 1
                problem = str(exc) if isinstance(exc, HistoryError) else f"unexpected {type(exc).__name__}"
                report = self._progress(ident, newest, base, problem)
                retry = Gap(positions, gap.filters)
                if held:
                    self._delivery.end_hold()  # the live stream goes on meanwhile
                if attempts >= _ATTEMPTS:
                    outcome: Outcome = "partial" if report is not None and report.recovered else "lost"
                    self.ledger.close(ident, outcome, f"gave up after {attempts} attempts: {self._safe(problem)}")
                    return
                self.ledger.warn("failed", f"backfill of {retry.describe()} failed: {self._safe(problem)}; will retry")
                # The retry starts where this attempt got to.
                when = time.monotonic() + self.config.backoff_max * random.uniform(0.5, 1.0)
                self._retries.append((when, retry, ident, attempts))
                return
            if fetched:
                log.info("backfill: %d events, %d new", fetched, new)
            report = self._progress(ident, newest, base, "")
            positions.update(newest)
            if not held or self._end_hold(deferrals):
                lost, recovered = (report.lost, report.recovered) if report is not None else (0, 0)
                self.ledger.close(ident, "recovered" if not lost else "partial" if recovered else "lost")
                return
            # Live events outgrew the hold and were let go: fetch on, and again from the oldest
            # event skipped for a held copy (what was released since is still in the window).
            if self._refetch_into(positions):
                edges.clear()
            log.info("backfill: live events outgrew the hold; fetching on from %s", Gap(positions, {}).describe())

    def _resolve(self, gap: Gap, ident: int, held: bool) -> Gap | None:
        """``gap`` with a position wherever it began before any event (the baseline's); None if
        there is none: then it is reported lost, and the hold it was given ends."""
        resolved, why = self._baseline.resolve(gap)
        if resolved is None:
            self.ledger.close(ident, "lost", self._safe(why))
            if held:
                self._delivery.end_hold()
        elif resolved is not gap:
            self.ledger.update(ident, since_slot=min(p.slot for p in resolved.positions.values()))
        return resolved

    def _progress(self, ident: int, newest: dict[str, Position], base: Counts, reason: str) -> GapReport | None:
        """Bring the report up to date: its range so far, and this attempt's counts on top of ``base``'s."""
        lost, deferred = self._lost_so_far(), self.hold.deferred
        report = self.ledger.get(ident)  # only this thread brings a report up to date: read, then write
        if report is None:
            return None
        until = max([p.slot for p in newest.values()] + [report.until_slot or -1])
        return self.ledger.update(
            ident,
            until_slot=until if until >= 0 else None,
            recovered=base.report.recovered + self._stats.backfill_events - base.events,
            lost=base.report.lost + max(0, lost - base.lost),
            deferred=base.report.deferred + max(0, deferred - base.deferred),
            reason=self._safe(reason) if reason else report.reason,
        )

    def _safe(self, problem: object) -> str:
        return redact(str(problem), self.config.api_key)[:300]

    def _refetch_pending(self) -> None:
        with self._cond:
            refetches, self._refetches = list(self._refetches), {}
        for key, slot in refetches:
            self._refetch_one(key, slot)

    def _end_hold(self, deferrals: int) -> bool:
        """``end_hold``, once the items asked for again while it held are fetched: their frames came
        among the held events, so their events are held in place too (after the hold they went out
        behind newer events). Asked for meanwhile: fetched too; the last look and the end under
        ``_cond``, so that none slips in between (bounded: a flood goes on after the hold, late)."""
        for _ in range(_REFETCH_PASSES):
            self._refetch_pending()
            with self._cond:
                if not self._refetches:
                    return self._delivery.end_hold(deferrals)
        return self._delivery.end_hold(deferrals)

    def _refetch_one(self, key: str, slot: int | None) -> None:
        """One item's events again (``source.refetch``), released like a backfill page."""
        channels = {sub.channel: dict(sub.filters) for sub in self._subscriptions()}
        channels = {ch: f for ch, f in channels.items() if self.source.recoverable(ch)}
        fetch = getattr(self.source, "refetch", None)
        if not channels or fetch is None:
            return
        self._stats.backfill_requests += 1
        try:
            events: list[Event] = list(fetch(key, slot, channels, self._stop))
        except Exception as exc:  # HistoryError, or a hostile answer: this item only
            if self._stop.is_set():
                raise Stopped from None
            self._stats.backfill_failures += 1
            problem = str(exc) if isinstance(exc, HistoryError) else f"unexpected {type(exc).__name__}"
            self.ledger.warn(
                "refetch", f"refetch of one item at slot {slot} failed: {self._safe(problem)}; its events lost"
            )
            return
        events.sort(key=slot_key)
        while self._delivery.room() < len(events):
            if self._stop.wait(IDLE):
                raise Stopped
        new = self._delivery.release_refetched(events)  # held in place while a hold is in force
        log.info("refetched one item at slot %s: %d events, %d new", slot, len(events), new)

    def _refetch_into(self, positions: dict[str, Position]) -> bool:
        """Move ``positions`` back to where held events that were let go had been skipped; True if any."""
        refetch = self.hold.take_refetch()
        for channel, position in refetch.items():
            key = STREAM if self.source.stream_wide else channel
            if key in positions and position < positions[key]:
                positions[key] = position
        return bool(refetch)


__all__ = ["STREAM", "Gap", "GapListener", "GapRecovery", "GapReport"]
