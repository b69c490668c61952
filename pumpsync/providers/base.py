"""What every provider dialect is: pure protocol code, no sockets, no clocks.

A dialect turns frames into normalized events and protocol outputs (replies to send,
acknowledgements, refusals), says what to send after connecting, and classifies close
codes. The connection thread does the I/O; the supervisor does the timing.
"""

from __future__ import annotations

import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pumpsync._bounds import MAX_TEXT, bounded_int, finite_float
from pumpsync._secrets import ApiKey
from pumpsync._text import WarningGate, log_safe
from pumpsync.errors import (
    AuthenticationError,
    ConfigurationError,
    EndOfStream,
    PlanError,
    ProviderRefused,
    SubscriptionRejected,
)
from pumpsync.events import UNKNOWN, Event
from pumpsync.providers._frames import Outgoing
from pumpsync.providers._guards import SURROGATE, depth_exceeds, has_lone_surrogate

log = logging.getLogger("pumpsync")
_RAISED = WarningGate()

# ---------------------------------------------------------------- outputs of a dialect


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame to send back at once (a pong to the server's ping): ``str`` as text, ``bytes`` as binary."""

    text: Outgoing  # the name is historical: bytes too


@dataclass(frozen=True, slots=True)
class Hello:
    """The server greeted us; ``info`` is its connected/status payload."""

    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pong:
    """An answer to our heartbeat ping."""


@dataclass(frozen=True, slots=True)
class Tick:
    """The source's own clock advanced (Solana: a new slot) on the data socket: the node is alive
    and its world moves on, whatever the data subscription sends (``ProviderSpec.data_clock``)."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An answer to a status request."""

    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscribed:
    channel: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    channel: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """One subscription was refused; the others go on."""

    error: SubscriptionRejected


@dataclass(frozen=True, slots=True)
class Fatal:
    """The provider refused us for good (bad key, plan), or the source has ended (``EndOfStream``)."""

    error: ProviderRefused | EndOfStream


@dataclass(frozen=True, slots=True)
class Notice:
    """A non-fatal server-side error report (``slow_consumer``, ``internal_error`` ...)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    """End this session and connect again; with ``rate_limited``, not sooner than the rate-limit
    floor (a JSON-RPC node's rate-limit error, or a subscription it failed to make)."""

    reason: str  # a bounded label (it becomes a metric label)
    message: str
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that was not what the protocol promises; ``reason`` is a bounded label."""

    reason: str


@dataclass(frozen=True, slots=True)
class Dropped:
    """A well-formed frame left out on purpose (another launchpad's launch, a channel no longer wanted);
    ``reason`` is a bounded label."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refetch:
    """Part of a frame was lost on the provider's side (a truncated log): ask the gap recovery to
    fetch that one item again from the history (``key``: a transaction signature, an id); what it
    finds arrives with ``backfill=True``, de-duplicated against what the frame did carry."""

    key: str
    slot: int | None = None


Output = (
    Event
    | Reply
    | Hello
    | Pong
    | Tick
    | StatusReport
    | Subscribed
    | Unsubscribed
    | Rejected
    | Fatal
    | Notice
    | Reconnect
    | Malformed
    | Dropped
    | Refetch
)

# Bounded reasons for malformed frames (they become metric labels).
MALFORMED_REASONS = (
    "not_json",
    "invalid_utf8",
    "not_object",
    "binary",  # a binary frame to a dialect that reads text ones (SPEC.frames): counted, still read
    "text",  # a text frame to a dialect that reads binary ones
    "unknown_type",
    "invalid_fields",
    "oversized",
    "protocol",
    "too_deep",
    "decode_error",  # the dialect raised on this frame (a bug, or a value nobody foresaw): skipped
)
# Real frames nest 4 levels deep at most. Deeper ones are refused before anyone downstream
# (a renderer, a sink, json.dumps) recurses into them.
MAX_DEPTH = 32

_fast_loads: Callable[[bytes], Any] | None
try:  # an optional speed-up (pip install 'pumpsync[fast]'); the stdlib decides whatever it refuses
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None
_SLOW_JSON = (
    "orjson is not installed (no wheel for this platform?): frames are parsed by the standard library's json, "
    "about 4x slower on the reader thread; pip install orjson"
)
_slow_json_told = False  # said once per process, at the first frame parsed without orjson

# ---------------------------------------------------------------- close-code policy


@dataclass(frozen=True)
class ClosePolicy:
    """What a close code means and what to do about it."""

    meaning: str
    refusal: type[ProviderRefused] | None = None  # set: fatal, stop retrying
    rate_limited: bool = False  # retry, but not sooner than the configured long floor


RETRY = ClosePolicy("connection closed")

# ---------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class Subscription:
    channel: str
    filters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Handshake:
    """How to open the socket. ``headers`` may carry the key: never log them."""

    url: str
    headers: dict[str, str]


# ---------------------------------------------------------------- dialect


class Dialect(ABC):
    """One connection's view of a provider's protocol. A new instance per socket."""

    provider: ClassVar[str]
    default_url: ClassVar[str]
    close_policies: ClassVar[dict[int, ClosePolicy]]
    # What an HTTP status at the WebSocket upgrade means, where the provider reads it its own way.
    http_policies: ClassVar[dict[int, ClosePolicy]] = {}
    channels: ClassVar[tuple[str, ...]] = ()
    # True: ``subscribe(sub)`` on a channel already subscribed sends only the difference (PumpPortal's
    # keys), so the client does not unsubscribe the channel first.
    diffs: ClassVar[bool] = False
    # ClientConfig fields the constructor takes as keyword arguments (provider-only options).
    config_options: ClassVar[tuple[str, ...]] = ()
    # Text with one bracket that only a JSON string can hold (Solana's "Program X invoke [1]" log lines):
    # parse() does not count it as nesting (outside a string it is invalid JSON: no parser gets past it).
    string_bracket: ClassVar[bytes | None] = None

    @staticmethod
    def merge(old: Subscription | None, new: Subscription) -> Subscription:
        """What the client's registry holds after ``subscribe(new)``: by default ``new`` replaces ``old``."""
        return new

    @staticmethod
    def remove(old: Subscription, filters: Mapping[str, Any] | None) -> Subscription | None:
        """What remains of ``old`` after ``unsubscribe(channel, filters)``; None: the whole channel goes."""
        if filters:
            raise ConfigurationError("filters", f"{old.channel!r} can only be unsubscribed as a whole")
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        receive = cls.__dict__.get("receive")
        if receive is not None and not getattr(receive, "guarded", False):
            cls.receive = _guarded(receive)  # type: ignore[method-assign]

    def __init__(self, connection: int, subscriptions: list[Subscription]) -> None:
        self.connection = connection
        self.subscriptions = {sub.channel: sub for sub in subscriptions}

    # -- connecting
    @abstractmethod
    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        """``auth`` is one of the spec's ``auth_forms``; ``key`` is None only for a provider
        whose spec says ``key_required=False`` and no key was given."""

    def on_open(self) -> list[Outgoing]:
        """Frames to send as soon as the socket is open."""
        return []

    def on_close(self) -> list[Outgoing]:
        """Frames to send before a deliberate close (a JSON-RPC node's ``logsUnsubscribe``)."""
        return []

    def on_hello_timeout(self) -> list[Outgoing]:
        """No greeting came in time; frames to send now (only dialects that wait for one)."""
        return []

    @property
    def awaiting_hello(self) -> bool:
        return False

    def resume(self, previous: Dialect) -> None:
        """Called on a new session's dialect with the previous session's (same connection slot),
        before ``handshake``: carry over what that session learned about the server."""
        return None  # most dialects learn nothing worth carrying

    # -- heartbeats
    def ping(self) -> Outgoing | None:
        """A heartbeat frame the client sends every ping interval, or None if the server pings us."""
        return None

    def status_request(self) -> Outgoing | None:
        return None

    # -- subscriptions at runtime
    def subscribe(self, sub: Subscription) -> list[Outgoing]:
        self.subscriptions[sub.channel] = sub
        return []

    def unsubscribe(self, channel: str) -> list[Outgoing]:
        self.subscriptions.pop(channel, None)
        return []

    # -- frames
    @abstractmethod
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        """Everything one frame means. Never raises."""

    def close_policy(self, code: int | None) -> ClosePolicy:
        if code is None:
            return RETRY
        return self.close_policies.get(code, RETRY)

    # -- helpers for subclasses
    def parse(self, payload: bytes | str) -> dict[str, Any] | Malformed:
        """Decode a frame into a JSON object, or say why not."""
        # The common case in one C call: a shallow frame (bytes) that orjson takes as an object. With
        # <= MAX_DEPTH brackets nothing nests too deep, and orjson refuses lone surrogates and invalid
        # UTF-8 itself, so the guards in _parse_slowly could find nothing (whatever orjson refuses,
        # NaN included, goes there). Only shallow frames: some versions crash on hostile nesting.
        # A flat frame (no "{" after the first byte, no "[": most trades) costs two memchr scans; only
        # the others count brackets (less those inside strings, like Solana's "invoke [n]").
        if (
            _fast_loads is not None
            and type(payload) is bytes
            and (
                (payload.find(b"{", 1) < 0 and payload.find(b"[") < 0)
                or payload.count(b"[") + payload.count(b"{") - self._string_brackets(payload) <= MAX_DEPTH
            )
        ):
            try:
                value = _fast_loads(payload)
            except ValueError:
                pass  # refused: the stdlib decides below, so both paths agree
            else:
                if type(value) is dict:
                    return value
        return self._parse_slowly(payload)

    def _string_brackets(self, payload: bytes) -> int:
        return payload.count(self.string_bracket) if self.string_bracket else 0

    def _parse_slowly(self, payload: bytes | str) -> dict[str, Any] | Malformed:
        """:meth:`parse` for whatever orjson did not take: the stdlib's verdict, then the guards."""
        if _fast_loads is None and not _slow_json_told:
            _tell_slow_json()
        # Cheap tests on the text first: almost no frame needs the walks below.
        if isinstance(payload, bytes):
            brackets = payload.count(b"[") + payload.count(b"{")
            escaped = b"\\" in payload and (b"\\ud" in payload or b"\\uD" in payload)
        else:
            brackets = payload.count("[") + payload.count("{")
            escaped = "\\" in payload and ("\\ud" in payload or "\\uD" in payload)
        try:
            # WebSocket text is UTF-8; json.loads(bytes) would also guess UTF-16/32 from a BOM.
            text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
        except UnicodeDecodeError:
            return Malformed("invalid_utf8")
        if type(payload) is str and SURROGATE.search(text):  # bytes never decode to one; a str may hold one
            return Malformed("invalid_utf8")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return Malformed("not_json")
        if not isinstance(value, dict):
            return Malformed("not_object")
        if brackets > MAX_DEPTH and depth_exceeds(value, MAX_DEPTH):
            return Malformed("too_deep")
        if escaped and has_lone_surrogate(value):
            return Malformed("invalid_utf8")
        obj: dict[str, Any] = value
        return obj

    def unknown(self, obj: dict[str, Any], received_at: int, reason: str) -> list[Output]:
        """A JSON object we could not read: count it and hand it on untouched."""
        event = Event(
            UNKNOWN,
            self.provider,
            opt_str(obj.get("mint")),
            opt_str(obj.get("signature")),
            opt_slot(obj.get("slot")),
            opt_int(obj.get("timestamp")),
            received_at,
            self.connection,
            False,
            obj,
        )
        return [Malformed(reason), event]


def _tell_slow_json() -> None:
    global _slow_json_told
    _slow_json_told = True
    log.warning(_SLOW_JSON)


def _guarded(receive: Callable[[Any, bytes | str, int], list[Output]]) -> Any:
    """``receive`` that never raises: a frame it cannot handle is one ``Malformed("decode_error")``,
    counted and logged (rate-limited), never the end of the session (issue 22, item 7)."""

    def guarded(self: Dialect, payload: bytes | str, received_at: int) -> list[Output]:
        try:
            return receive(self, payload, received_at)
        except Exception as exc:  # the one place that turns any failure into a count
            name = type(self).__name__
            held = _RAISED.allow(name)
            if held is not None:
                log.warning(
                    "%s: a frame could not be read (%s: %s); skipped and counted as malformed (decode_error)%s",
                    name,
                    type(exc).__name__,
                    log_safe(str(exc), 120),
                    f"; {held} more since the last warning" if held else "",
                )
            return [Malformed("decode_error")]

    guarded.guarded = True  # type: ignore[attr-defined]
    guarded.__doc__ = receive.__doc__
    guarded.__name__ = receive.__name__
    guarded.__qualname__ = getattr(receive, "__qualname__", receive.__name__)
    return guarded


# ---------------------------------------------------------------- building events fast


def event_defaults_after(name: str) -> tuple[Any, ...]:
    """The defaults of ``Event``'s fields after ``name``: what completes an event built positionally.

    ``Event._make(head + tail)`` costs half of ``Event(...)`` with keyword arguments (which binds
    all of them in Python). Computed from the class, it stays right when fields are appended, and
    ``_make`` checks the length."""
    fields = Event._fields
    return tuple(Event._field_defaults[field] for field in fields[fields.index(name) + 1 :])


# ---------------------------------------------------------------- strict field readers


def opt_str(value: Any) -> str | None:
    """A string of sane length (``_bounds.MAX_TEXT``), else None."""
    return value if type(value) is str and len(value) <= MAX_TEXT else None


# Integers outside a signed 64-bit range are refused (``_bounds.bounded_int``); numbers that have
# no finite float (a 400-digit integer, NaN, a decimal string of 100,000 digits) are None.
opt_int = bounded_int
opt_num = finite_float


def opt_slot(value: Any) -> int | None:
    """A Solana slot: a whole number >= 0 (a negative one would poison gap recovery's ``since``)."""
    slot = bounded_int(value)
    return slot if slot is not None and slot >= 0 else None


def opt_amount(value: Any) -> float | None:
    """An amount (SOL, tokens, reserves): a finite number >= 0, else None."""
    number = finite_float(value)
    return number if number is not None and number >= 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` when both are given and the result is a finite number."""
    if numerator is None or not denominator:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) else None  # 1e308 / 1e-308 overflows to inf


__all__ = [
    "RETRY",
    "AuthenticationError",
    "ClosePolicy",
    "Dialect",
    "Dropped",
    "Fatal",
    "Handshake",
    "Hello",
    "Malformed",
    "Notice",
    "Output",
    "PlanError",
    "Pong",
    "Reconnect",
    "Refetch",
    "Rejected",
    "Reply",
    "StatusReport",
    "Subscribed",
    "Subscription",
    "Tick",
    "Unsubscribed",
    "event_defaults_after",
    "opt_amount",
    "opt_int",
    "opt_num",
    "opt_slot",
    "opt_str",
    "ratio",
]
