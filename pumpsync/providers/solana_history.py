"""Gap recovery for ``solana``: what the stream missed, fetched again over HTTP JSON-RPC.

``getSignaturesForAddress(program, until=<last signature seen>)`` pages back (newest first, 1,000 a
page) to the last event we had; then ``getTransaction`` fetches each missed transaction (a few at a
time: public nodes allow about 10 requests/s), and its ``meta.logMessages`` are decoded exactly as
the live notifications are. Where a log was cut (``Log truncated``), the transaction's events come
from its inner instructions instead: the program emits each event a second time as a self-CPI whose
data is the 8-byte event tag, then the event.

Bounded: at most ``max_gap_transactions`` transactions per gap (the newest ones: they lead into the
live stream); the rest are counted as lost and logged, never silently dropped. HTTP 429 and JSON-RPC
rate-limit errors are retried after the server's ``Retry-After`` or an exponential backoff.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from pumpsync._backoff import retry_after
from pumpsync._secrets import redact
from pumpsync._text import log_safe
from pumpsync.events import Event
from pumpsync.providers._history_http import read_json
from pumpsync.providers._solana_events import (
    CHANNELS,
    LOG_TRUNCATED,
    PROGRAM_ID,
    PUMPSWAP_PROGRAM_ID,
    Filter,
    compile_filters,
)
from pumpsync.providers._solana_rpc import MAX_GAP_TRANSACTIONS, commitment_of, http_url
from pumpsync.providers._solana_tx import INNER, TRUNCATED, decode_transaction, instructions_of
from pumpsync.providers.base import Malformed, Output, opt_slot, opt_str
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import HistoryError, Position

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

log = logging.getLogger("pumpsync.history.solana")

PAGE_LIMIT = 1000  # getSignaturesForAddress's maximum
CONCURRENCY = 4
_CHUNK = 64  # transactions per page handed to the gap recovery
_ATTEMPTS = 8  # per call, for 429 / 5xx / network errors / rate-limit errors
_NOT_FOUND_ATTEMPTS = 3  # a confirmed signature's transaction may take a moment to be served
_COUNT_PAGES = 100  # beyond the ceiling, signature pages read only to count the loss
_MAX_PAGES = 10_000  # a node that pages forever (an ``until`` it does not know and no slot bound) must not keep us
_REQUEST_TIMEOUT = (5.0, 30.0)
_SIGNATURE_MAX = 128  # a base58 signature is 87-88 characters
_RATE_LIMIT_CODES = frozenset({429, -32429, -32005})
_RETRY_CODES = frozenset({-32603, -32004, -32014, -32016})  # internal error, block/slot not yet available

# Why a transaction of the gap gave no (or fewer) events; what ``counts`` holds.
LOST_CEILING = "ceiling"  # beyond max_gap_transactions
LOST_UNAVAILABLE = "unavailable"  # the node would not serve it
LOST_TRUNCATED = "log_truncated"  # cut log and no inner instructions to recover from
RECOVERED_TRUNCATED = "truncated_recovered"
FAILED_TX = "failed_tx"
UNREADABLE_TX = "unreadable_tx"  # a getTransaction answer of a shape nothing could be read from (lost)
NO_CUT = "no_cut"  # gaps listed without a cut (getSlot failed): the newest may misorder across the programs
AFTER_CUT = "after_cut"  # PumpSwap transactions newer than the cut: the live stream's (not a loss)
NO_PROGRESS = "no_progress"  # signature pages that brought nothing new (a cursor that does not advance)
LOSS_REASONS = (LOST_CEILING, LOST_UNAVAILABLE, LOST_TRUNCATED, UNREADABLE_TX)
STAT_REASONS = (*LOSS_REASONS, RECOVERED_TRUNCATED, FAILED_TX, NO_PROGRESS, NO_CUT, AFTER_CUT)


@dataclass
class _Listing:
    """One program's signatures of a gap (newest first) and every signature it was answered."""

    program: str
    since_slot: int
    until: str | None  # the signature the gap starts after (the pump program's), if known
    seen: set[str] = field(default_factory=set)  # a node that ignores ``before`` answers a page again
    found: list[tuple[str, int]] = field(default_factory=list)
    cut: int | None = None  # the newest slot listed: what came after is the live stream's


class SolanaHistory:
    """The ``HistorySource`` of ``solana`` (one position serves every channel)."""

    stream_wide = True

    def __init__(
        self,
        config: ClientConfig,
        *,
        max_transactions: int | None = None,
        concurrency: int | None = None,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        url = config.rest_url or http_url(_first(config.url))
        key = config.api_key
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key and config.auth == "query":
            url = with_query(url, "api-key", key.reveal())
        elif key and config.auth == "header":
            self._headers["Authorization"] = f"Bearer {key.reveal()}"
        self.url = url
        self._key = key
        commitment = commitment_of(config)
        # Neither history call accepts "processed": the nearest they serve. The cut's slot is read at
        # the live stream's commitment (what it had delivered by then).
        self.commitment = "confirmed" if commitment == "processed" else commitment
        self.live_commitment = commitment
        ceiling = max_transactions or getattr(config, "max_gap_transactions", None)
        self.max_transactions = ceiling or MAX_GAP_TRANSACTIONS
        self.concurrency = max(1, concurrency or getattr(config, "history_concurrency", None) or CONCURRENCY)
        self.page_limit = page_limit
        self._backoff_initial = config.backoff_initial or 0.5
        self._backoff_max = config.backoff_max
        self._options: dict[str, Any] = {"timeout": _REQUEST_TIMEOUT}
        if config.proxy:
            self._options["proxies"] = {"http": config.proxy, "https": config.proxy}
        if config.ca_bundle:
            self._options["verify"] = config.ca_bundle
        self.counts: Counter[str] = Counter()  # lost / recovered / skipped transactions, and decode failures
        self.rate_limited = 0  # 429s and rate-limit errors seen (each was retried)
        self._ids = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    # -- HistorySource
    def recoverable(self, channel: str) -> bool:
        return channel in CHANNELS

    def fetch(
        self, channels: Mapping[str, Mapping[str, Any]], since: Position, stop: threading.Event
    ) -> Iterator[list[Event]]:
        filters = compile_filters({ch: f for ch, f in channels.items() if self.recoverable(ch)})
        if not filters:
            return
        listings = [self._listing(PROGRAM_ID, since, stop, self._cut_slot(stop) if "trades" in filters else None)]
        if "trades" in filters:  # PumpSwap's trades: its list up to the same moment
            first = listings[0]
            cut = max([first.cut, *(slot for _, slot in first.found[:1])]) if first.cut is not None else None
            listings.append(self._listing(PUMPSWAP_PROGRAM_ID, since, stop, cut))
        missed = list(reversed(listings[0].found))  # oldest first: the order they happened in
        if len(listings) > 1:
            seen = {signature for signature, _ in missed}
            amm = [item for item in reversed(listings[1].found) if item[0] not in seen]
            # One list by slot; within a slot the program's first (a migration teaches the pool its
            # PumpSwap trades need), each list in its own order (a stable sort).
            missed = sorted(missed + amm, key=lambda item: item[1])
        for start in range(0, len(missed), _CHUNK):
            chunk = missed[start : start + _CHUNK]
            transactions = self._map(lambda item: self.transaction(item[0], stop), chunk)
            events: list[Event] = []
            received_at = int(time.time() * 1000)
            for (signature, slot), tx in zip(chunk, transactions, strict=True):
                if tx is None:
                    self._count(LOST_UNAVAILABLE)
                    continue
                events += self._read(tx, signature, slot, received_at, filters)
            yield events

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            sessions, self._sessions = self._sessions, []
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for session in sessions:
            session.close()

    def stats(self) -> dict[str, int]:
        """Losses by reason, recoveries and 429s, the known ones at 0 from the start (metric labels)."""
        with self._lock:
            counts = dict(self.counts)
        return {**dict.fromkeys(STAT_REASONS, 0), **counts, "rate_limited": self.rate_limited}

    def lost(self) -> int:
        """Transactions counted lost so far, whatever the reason (each gap's report takes its share)."""
        with self._lock:
            return sum(self.counts[reason] for reason in LOSS_REASONS)

    # -- the gap's signatures
    def signatures(self, since: Position, stop: threading.Event, program: str = PROGRAM_ID) -> list[tuple[str, int]]:
        """The successful transactions of ``program`` after ``since`` (newest first), at most
        ``max_transactions``; the rest are counted as lost. ``since.signature`` is the pump program's:
        PumpSwap's list is bounded by the slot alone."""
        return self._listing(program, since, stop).found

    def _listing(self, program: str, since: Position, stop: threading.Event, cut: int | None = None) -> _Listing:
        until = since.signature if program == PROGRAM_ID else None
        listing = _Listing(program, since.slot, until, cut=cut)
        beyond = self._list(listing, until, None, stop)
        if until:
            # ``until`` ends the list at that signature, but its slot may hold transactions before it
            # that were not delivered (the delivery's order within a slot is not the node's): the
            # rest of that slot too (the recovery skips what was delivered as a duplicate).
            beyond += self._list(listing, None, until, stop)
        self._beyond(beyond)
        return listing

    def head(self, stop: threading.Event) -> Position | None:
        """Where the chain is now, at the live stream's commitment (a gap before any event starts there)."""
        slot = opt_slot(self.call("getSlot", [{"commitment": self.live_commitment}], stop))
        return None if slot is None else Position(slot)

    def _cut_slot(self, stop: threading.Event) -> int | None:
        """The moment both programs are listed up to: the node's slot, read after the live stream is
        back and before the first listing. The pump program's list (taken first) reaches at least
        that slot; PumpSwap's (taken after it) is cut there, since what came later came live. A node
        that answers no slot: no cut, counted and warned (the newest may then come out of order); one
        that refuses the call: a ``HistoryError``, as for any call of the gap."""
        head = self.head(stop)
        slot = None if head is None else head.slot
        if slot is None:
            self._count(NO_CUT)
            log.warning("solana gap: the node did not tell its slot: PumpSwap's transactions are listed without a cut")
        return slot

    def _beyond(self, beyond: int) -> None:
        if beyond:
            self._count(LOST_CEILING, beyond)
            log.warning(
                "solana gap: %d transactions beyond the ceiling of %d were not fetched (their events are lost)",
                beyond,
                self.max_transactions,
            )

    def _list(self, listing: _Listing, until: str | None, before: str | None, stop: threading.Event) -> int:
        """Page back from ``before`` (else the newest) to ``until`` or the listing's slot, adding to
        it what it has not seen up to its cut; how many were beyond the ceiling."""
        program, since_slot, found, seen = listing.program, listing.since_slot, listing.found, listing.seen
        room, cut, after_cut = self.max_transactions, listing.cut, 0
        rest_of_slot = before is not None  # the second list: an answer seen before is the node ignoring ``before``
        beyond = 0
        for page_number in range(_MAX_PAGES):
            if len(found) >= room and page_number >= _COUNT_PAGES:
                log.warning("solana gap: counting stopped after %d pages: the loss below is a lower bound", page_number)
                break
            options: dict[str, Any] = {"limit": self.page_limit, "commitment": self.commitment}
            if until:
                options["until"] = until
            if before:
                options["before"] = before
            page = self.call("getSignaturesForAddress", [program, options], stop)
            if not isinstance(page, list):
                raise HistoryError("getSignaturesForAddress did not answer a list")
            done = len(page) < self.page_limit
            fresh = 0
            for item in page[: self.page_limit]:  # a page past its limit: the rest comes on the next one
                signature = opt_str(item.get("signature")) if isinstance(item, dict) else None
                slot = opt_slot(item.get("slot")) if isinstance(item, dict) else None
                if signature is None or slot is None or len(signature) > _SIGNATURE_MAX:
                    raise HistoryError("getSignaturesForAddress answered an item without signature or slot")
                if signature in seen:
                    continue  # answered before: not a transaction more
                seen.add(signature)
                fresh += 1
                before = signature
                if slot < since_slot:  # older than the gap (also the bound when no signature is known)
                    done = True
                    break
                if listing.program != PROGRAM_ID and cut is not None and slot > cut:
                    after_cut += 1  # newer than the moment the lists reach: the live stream has it
                elif item.get("err") is not None:
                    self._count(FAILED_TX)
                elif len(found) < room:
                    found.append((signature, slot))
                else:
                    beyond += 1
            if page and not fresh and not done:
                if rest_of_slot:
                    break  # counted by the first list, if at all
                self._count(NO_PROGRESS)
                log.warning(
                    "solana gap: getSignaturesForAddress answered page %d with nothing new (the node does not "
                    "page back): stopped there; the gap's older part is unknown, not counted lost",
                    page_number + 1,
                )
                break
            if done:
                break
        if after_cut:
            self._count(AFTER_CUT, after_cut)
        return beyond

    # -- one transaction
    def transaction(self, signature: str, stop: threading.Event) -> dict[str, Any] | None:
        params = [
            signature,
            {"encoding": "json", "maxSupportedTransactionVersion": 0, "commitment": self.commitment},
        ]
        for attempt in range(_NOT_FOUND_ATTEMPTS):
            tx = self.call("getTransaction", params, stop)
            if isinstance(tx, dict):
                return tx
            if tx is not None:
                raise HistoryError("getTransaction answered neither an object nor null")
            if attempt + 1 < _NOT_FOUND_ATTEMPTS and stop.wait(self._backoff_initial * 2**attempt):
                raise HistoryError("client closed")
        return None

    def refetch(
        self, signature: str, slot: int | None, channels: Mapping[str, Mapping[str, Any]], stop: threading.Event
    ) -> list[Event]:
        """One transaction's events again: for a live notification whose log was truncated (its
        events after the cut come from the inner instructions)."""
        tx = self.transaction(signature, stop)
        if tx is None:
            self._count(LOST_UNAVAILABLE)
            return []
        return self._read(tx, signature, slot, int(time.time() * 1000), compile_filters(channels))

    def _read(
        self, tx: Mapping[str, Any], signature: str, slot: int | None, received_at: int, filters: Mapping[str, Filter]
    ) -> list[Event]:
        """``events_of``, for one transaction from outside: whatever its shape breaks, that
        transaction alone is counted lost (``unreadable_tx``), never the gap."""
        try:
            return self.events_of(tx, signature, slot, received_at, filters)
        except Exception as exc:  # a hostile shape the decoders did not foresee: this item only
            self._count(UNREADABLE_TX)
            log.debug("solana gap: transaction at slot %s unreadable: %s", slot, type(exc).__name__)
            return []

    def events_of(
        self, tx: Mapping[str, Any], signature: str, slot: int | None, received_at: int, filters: Mapping[str, Filter]
    ) -> list[Event]:
        """The events of one ``getTransaction`` result, as the live stream would have given them."""
        meta = tx.get("meta")
        if not isinstance(meta, dict):
            self._count("invalid_fields")
            return []
        if meta.get("err") is not None:
            self._count(FAILED_TX)
            return []
        slot = opt_slot(tx.get("slot")) if slot is None else slot
        logs = meta.get("logMessages")
        logs = [line for line in logs if isinstance(line, str)] if isinstance(logs, list) else None
        out: list[Output] = []
        instructions = instructions_of(tx, out) or []
        source = decode_transaction(logs, instructions, signature, slot, received_at, 0, True, filters, out)
        if source == INNER:
            self._count(RECOVERED_TRUNCATED)
        elif source == TRUNCATED:
            self._count(LOST_TRUNCATED)
        events: list[Event] = []
        for item in out:
            if type(item) is Event:
                events.append(item)
            elif isinstance(item, Malformed) and item.reason != LOG_TRUNCATED:
                self._count(item.reason)
        return events

    # -- JSON-RPC over HTTP
    def call(self, method: str, params: list[Any], stop: threading.Event) -> Any:
        """One JSON-RPC call, retried on 429, 5xx, network and rate-limit errors; ``HistoryError``
        when it cannot be had (the message names no key)."""
        with self._lock:
            self._ids += 1
            body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params})
        session = self._session()
        problem = "no attempt"
        for attempt in range(_ATTEMPTS):
            if stop.is_set():
                raise HistoryError("client closed")
            wait = min(self._backoff_initial * 2**attempt, self._backoff_max)
            try:
                response = session.post(self.url, data=body, headers=self._headers, stream=True, **self._options)
            except requests.RequestException as exc:
                problem = redact(f"{type(exc).__name__}: {exc}", self._key)
            else:
                with response:
                    status = response.status_code
                    answer = read_json(response, method) if status == 200 else None
                if status == 200:
                    if not isinstance(answer, dict):
                        raise HistoryError(f"{method}: the answer is not a JSON-RPC object")
                    error = answer.get("error")
                    if error is None:
                        return answer.get("result")
                    code = error.get("code") if isinstance(error, dict) else None
                    code = code if type(code) is int else None  # typed before use: {"x": 1} is no code
                    message = error.get("message") if isinstance(error, dict) else error
                    message = (message if isinstance(message, str) else type(message).__name__)[:300]
                    problem = f"{method}: error {code}: {log_safe(message)}"
                    if code in _RATE_LIMIT_CODES:
                        self.rate_limited += 1
                    elif code not in _RETRY_CODES:
                        raise HistoryError(redact(problem, self._key))
                else:
                    problem = f"{method}: HTTP {status}"
                    if status == 429:
                        self.rate_limited += 1
                        wait = retry_after(response.headers.get("Retry-After"), wait)
                    elif status >= 500:
                        wait = retry_after(response.headers.get("Retry-After"), wait)
                    else:
                        raise HistoryError(problem)
            log.debug("%s %s: %s (attempt %d)", method, redact(self.url, self._key), problem, attempt + 1)
            if stop.wait(wait):
                raise HistoryError("client closed")
        raise HistoryError(f"{problem} after {_ATTEMPTS} attempts")

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        """``fn`` over ``items`` with at most ``concurrency`` at a time, results in order."""
        if self.concurrency == 1 or len(items) == 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._closed:
                raise HistoryError("client closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="pumpsync-solana-history")
            pool = self._pool
        return list(pool.map(fn, items))

    def _count(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.counts[reason] += n


def _first(url: Any) -> str:
    """The client's URL (the first one, where a client is given several nodes)."""
    return url if isinstance(url, str) else str(next(iter(url)))


def make_history(config: ClientConfig) -> SolanaHistory:
    return SolanaHistory(config)


__all__ = ["SolanaHistory", "make_history"]
