"""The ``geyser`` dialect: Yellowstone gRPC's ``Subscribe`` stream, pure (messages in, requests out).

- One ``SubscribeRequest`` sets the filters (successful non-vote transactions of pump.fun and
  PumpSwap, slots, the commitment, ``from_slot`` when resuming), then a ping-only request: its pong
  comes after whatever the server replayed, so the channels are live (``Subscribed``) from then on.
- Every server ping is answered with a ping-only request (load balancers cut a stream whose client
  sends nothing; a request with filters would replace them).
- Resume: ``from_slot`` = the newest slot delivered; what the server sends again is recognised by
  signature and dropped (``Dropped("replayed")``). Where the server no longer has that slot it ends
  the call (OUT_OF_RANGE naming the first slot it has): the next session starts there, and the gap
  before it comes from RPC history (``rpc_url``) or is reported lost (``GeyserHistory``).
- At ``processed`` a slot's events wait for the slot's own status: DEAD drops them (counted), any
  other status (or the stream moving 32 slots on) lets them go.
- The call's end reaches the dialect as a status frame (``_status``): a refused token is fatal, a
  rate limit backs off, anything else reconnects.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from pumpsync._secrets import ApiKey
from pumpsync.errors import AuthenticationError, PlanError
from pumpsync.events import Event
from pumpsync.providers._borsh import b58encode
from pumpsync.providers.base import (
    ClosePolicy,
    Dialect,
    Dropped,
    Fatal,
    Handshake,
    Malformed,
    Output,
    Reconnect,
    Reply,
    Subscribed,
    Subscription,
)
from pumpsync.providers.geyser import _proto as proto
from pumpsync.providers.geyser import _status as status
from pumpsync.providers.geyser._counts import COUNTS
from pumpsync.providers.geyser._events import transaction_events
from pumpsync.providers.solana import (
    CHANNELS,
    COMMITMENTS,
    DEFAULT_COMMITMENT,
    PROGRAM_ID,
    PUMPSWAP_PROGRAM_ID,
    compile_filter,
    compile_filters,
)

PROVIDER = "geyser"
DEFAULT_URL = "https://grpc.example-geyser-provider.invalid"  # every operator has its own; set url=
REPLAYED = Dropped("replayed")
DEAD_SLOT = Dropped("dead_slot")
FAILED = Dropped("failed_tx")  # filtered out by the server already (failed=false); checked anyway
OTHER_UPDATE = Dropped("other_update")
FILTER_REASONS = (REPLAYED.reason, DEAD_SLOT.reason, FAILED.reason, OTHER_UPDATE.reason)
MALFORMED = (
    "field_zero",
    "length_past_end",
    "wire_type",
    "varint_overflow",
    "varint_past_end",
    "varint_too_long",
    "empty_update",
    "no_transaction",
    "bad_signature",
    "bad_pubkey",
    "too_many_keys",
    "too_many_logs",
    "too_many_inner",
    "too_many_instructions",
    "invalid_utf8",
    "slot_range",
)
_PROGRAMS = (PROGRAM_ID, PUMPSWAP_PROGRAM_ID)
_SEEN_SLOTS = 256  # slots whose signatures are kept to recognise a replay's overlap (the Rust client: 250)
_HOLD_SLOTS = 32  # at processed: a slot with no status this far behind the newest is let go
_REPLAY_MARGIN = 8  # slots past the first one the server said it has (its window moves on meanwhile)
_PING_ID = 0x5053  # our ping ids start here (the server echoes them in pongs)


class Geyser(Dialect):
    provider = PROVIDER
    default_url = DEFAULT_URL
    channels = CHANNELS
    config_options = ("commitment", "since")
    close_policies: ClassVar[dict[int, ClosePolicy]] = {}

    def __init__(
        self,
        connection: int,
        subscriptions: list[Subscription],
        commitment: str | None = DEFAULT_COMMITMENT,
        since: int | None = None,
    ) -> None:
        super().__init__(connection, subscriptions)
        commitment = commitment or DEFAULT_COMMITMENT
        if commitment not in COMMITMENTS:
            commitment = DEFAULT_COMMITMENT  # checked at configuration (check_config)
        self.commitment = commitment
        self.filters = compile_filters({sub.channel: sub.filters for sub in subscriptions})
        self.from_slot: int | None = since  # the first session starts at ``since`` where given
        self.last_slot: int | None = None  # the newest slot whose events were delivered
        self.newest_seen = 0  # the newest slot any update named
        self.resuming = False
        self._replay_upto = -1  # resuming: the newest slot the last session saw (what comes again up to it)
        self._replayed: set[int] = set()  # slots of this session's replay overlap, counted once each
        self.refused_from: int | None = None  # the from_slot the last session's server refused
        self.first_available: int | None = None
        self.after_refusal = False  # this session starts at the first slot a refusing server named
        self.oversized = False  # this session ended on a message over the receive limit
        self._seen: OrderedDict[int, set[bytes]] = OrderedDict()
        self._held: OrderedDict[int, list[Event]] = OrderedDict()
        self._live = False
        self._next_ping = _PING_ID
        self._subscribe_ping: int | None = None

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        return Handshake(url, {"x-token": key.reveal()} if key else {})

    def resume(self, previous: Dialect) -> None:
        if not isinstance(previous, Geyser):
            return
        self._seen = previous._seen
        for slot in previous._held:  # held, never delivered (processed): they must count as new when replayed
            self._seen.pop(slot, None)
        self.newest_seen = previous.newest_seen
        self._replay_upto = previous.newest_seen
        self.last_slot = previous.last_slot
        resume_at = self.last_slot if self.last_slot is not None else previous.from_slot
        if resume_at is None and previous.newest_seen:  # no event yet: from the newest slot any update named
            resume_at = previous.newest_seen
        if previous.oversized:
            resume_at = None  # the same message would come again: live, the gap is the history's
        elif previous.refused_from is not None:
            # The server no longer had it: start where it said it begins (the gap before that is
            # the history's); refused there too, start live.
            first = previous.first_available
            resume_at = None if previous.after_refusal or first is None else first + _REPLAY_MARGIN
            self.after_refusal = resume_at is not None
        self.from_slot = resume_at
        self.resuming = resume_at is not None

    # -- requests
    def _ping_id(self) -> int:
        self._next_ping = (self._next_ping + 1) & 0x7FFFFFFF
        return self._next_ping

    # Outputs to send are bytes (SEAM.md 1): ``list[Any]`` fits the base class before and after the
    # contract's ``list[Outgoing]``.
    def on_open(self) -> list[Any]:
        if self.resuming:
            COUNTS.add("replays")
        request = proto.subscribe_request(_PROGRAMS, self.commitment, from_slot=self.from_slot)
        self._subscribe_ping = self._ping_id()
        return [request, proto.ping_request(self._subscribe_ping)]

    def subscribe(self, sub: Subscription) -> list[Any]:
        self.filters[sub.channel] = compile_filter(sub.channel, sub.filters)
        self.subscriptions[sub.channel] = sub
        if not self._live:
            return []  # the session's pong will say it is live
        self._subscribe_ping = self._ping_id()
        return [proto.ping_request(self._subscribe_ping)]

    def unsubscribe(self, channel: str) -> list[Any]:
        self.subscriptions.pop(channel, None)
        self.filters.pop(channel, None)
        return []

    # -- messages
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        if isinstance(payload, str):
            return [Malformed("text_frame")]
        ended = status.read_status(payload)
        if ended is not None:
            return [Malformed("field_zero")] if ended[0] == status.NOT_A_STATUS else self._ended(*ended)
        try:
            update = proto.decode_update(payload)
        except proto.ProtoError as exc:
            return [Malformed(str(exc))]
        if type(update) is proto.Transaction:
            return self._transaction(update, received_at)
        if type(update) is proto.Slot:
            return self._slot(update)
        if type(update) is proto.Ping:
            COUNTS.add("pings")
            return [Reply(proto.ping_request(self._ping_id()))]
        if type(update) is proto.Pong:
            if update.id == self._subscribe_ping:
                self._subscribe_ping = None
                self._live = True
                return [Subscribed(channel) for channel in self.subscriptions]
            return []
        return [OTHER_UPDATE]

    def _transaction(self, tx: proto.Transaction, received_at: int) -> list[Output]:
        slot = tx.slot
        self.newest_seen = max(self.newest_seen, slot)
        if tx.failed:
            return [FAILED]
        if self.resuming and slot <= self._replay_upto and slot not in self._replayed:
            self._replayed.add(slot)  # a slot of the overlap the server sent again
            COUNTS.add("replayed_slots")
        seen = self._seen.get(slot)
        if seen is not None and tx.signature in seen:
            COUNTS.add("replayed_transactions")
            return [REPLAYED]
        if seen is None:
            seen = self._seen[slot] = set()
            while len(self._seen) > _SEEN_SLOTS:
                self._seen.popitem(last=False)
        seen.add(tx.signature)
        out: list[Output] = []
        transaction_events(tx, b58encode(tx.signature), received_at, self.connection, self.filters, out)
        out = [item._replace(provider=PROVIDER) if type(item) is Event else item for item in out]
        if self.commitment == "processed":
            held = [item for item in out if isinstance(item, Event)]
            if held:
                self._held.setdefault(slot, []).extend(held)
                out = [item for item in out if type(item) is not Event]
            return out + self._release(self.newest_seen - _HOLD_SLOTS)
        if any(type(item) is Event for item in out):
            self.last_slot = slot if self.last_slot is None else max(self.last_slot, slot)
        return out

    def _slot(self, update: proto.Slot) -> list[Output]:
        self.newest_seen = max(self.newest_seen, update.slot)
        if self.commitment != "processed":
            return []
        if update.status == proto.SLOT_DEAD:
            dropped = self._held.pop(update.slot, [])
            if dropped:
                COUNTS.add("dead_slots")
                COUNTS.add("dead_slot_events", len(dropped))
            return [DEAD_SLOT] * len(dropped)
        if update.status in (0, 1, 2):  # processed (the bank is frozen), confirmed, finalized
            return self._release(update.slot, inclusive=True)
        return []

    def _release(self, upto: int, inclusive: bool = False) -> list[Output]:
        out: list[Output] = []
        while self._held:
            slot = next(iter(self._held))
            if slot > upto or (slot == upto and not inclusive):
                break
            out.extend(self._held.pop(slot))
            self.last_slot = slot if self.last_slot is None else max(self.last_slot, slot)
        if inclusive and upto in self._held:  # a later slot's status came first: this one's too
            out.extend(self._held.pop(upto))
            self.last_slot = max(self.last_slot or upto, upto)
        return out

    def _ended(self, code: int, details: str) -> list[Output]:
        """The call ended with ``code``: what it means for the session and the next one."""
        refused, first = status.replay_refused(code, details)
        if refused and self.from_slot is not None:
            self.refused_from, self.first_available = self.from_slot, first
            COUNTS.add("replays_refused")
            return [Reconnect("replay_unavailable", f"geyser: from_slot {self.from_slot} refused: {details}")]
        if code == status.UNAUTHENTICATED:
            return [Fatal(AuthenticationError(f"geyser refused the token: {details}", provider=PROVIDER))]
        if code == status.PERMISSION_DENIED:
            return [Fatal(PlanError(f"geyser refused the stream: {details}", provider=PROVIDER))]
        if status.oversized(code, details):
            self.oversized = True
            return [Malformed("oversized"), Reconnect("oversized", f"geyser: {details}")]
        if code == status.RESOURCE_EXHAUSTED:
            return [Reconnect("rate_limited", f"geyser: {details}", rate_limited=True)]
        if code == status.UNAVAILABLE:
            return [Reconnect("unavailable", f"geyser: {details}")]
        if code == status.OK:
            return [Reconnect("closed", f"geyser: {details}")]
        return [Reconnect("grpc_error", f"geyser: gRPC status {code}: {details}")]

    # The flush of what a processed slot still holds when the session ends is not needed: the
    # next session resumes at the newest slot delivered, so the held slots come again.
    def held_events(self) -> int:
        return sum(len(events) for events in self._held.values())


def describe(config: Any) -> str:
    return f"geyser {getattr(config, 'commitment', None) or DEFAULT_COMMITMENT}"


__all__ = ["FILTER_REASONS", "MALFORMED", "PROVIDER", "Geyser"]
