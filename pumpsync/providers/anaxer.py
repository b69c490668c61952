"""Anaxer's stream, in both of its wire forms.

*Document form* (the provider's stream document): ``?key=`` auth, ``{"subscribe": ch, "filters": {}}``,
acks ``{"type":"subscribed","channel":ch}``, events as bare objects carrying a ``slot``, server
``{"type":"ping"}`` every 30 s that must be answered with ``{"type":"pong"}`` within 10 s.

*v1 form* (the provider's SDK): Bearer auth, first frame ``{"v":1,"type":"connected",...}``,
``{"type":"subscribe","id":..,"channel":..,"filters":..}``, data frames
``{"v":1,"channel":..,"sub":id,"data":{...}}``, client pings.

The form is told by the first frame: a ``connected`` frame with ``"v":1`` means v1; anything
else (or nothing within the hello timeout) means the document form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pumpsync._secrets import ApiKey
from pumpsync.errors import SubscriptionRejected
from pumpsync.providers._anaxer_records import infer_channel, normalize
from pumpsync.providers.base import (
    AuthenticationError,
    ClosePolicy,
    Dialect,
    Fatal,
    Handshake,
    Hello,
    Malformed,
    Notice,
    Output,
    Pong,
    Rejected,
    Reply,
    Subscribed,
    Subscription,
    Unsubscribed,
    opt_str,
)
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import Outgoing, ProviderSpec

V1 = "v1"
DOCUMENT = "document"

CHANNELS = ("trades", "creations", "graduations", "prices")
# Filter keys (checked by pumpsync._filters), both vocabularies on every channel: the SDK v1 names, the document's.
FILTER_KEYS = (
    "sources",  # v1: e.g. ["pumpfun"]
    "mints",  # v1: only these token mints
    "wallets",  # v1: only these traders / creators
    "minVolumeUsd",
    "maxVolumeUsd",
    "enriched",
    "excludeMayhem",
    "minLiquiditySol",
    "solOnly",
    "exchange",  # document: e.g. "pumpfun"
    "side",  # document: "buy" or "sell"
    "minSol",  # document: the least SOL amount of a trade
)

# v1 error codes that end one subscription; "forbidden" is the document form's.
_SUBSCRIPTION_FATAL = frozenset(
    {
        "unknown_channel",
        "invalid_filters",
        "subscription_limit",
        "duplicate_id",
        "unknown_subscription",
        "plan_restricted",
        "forbidden",
    }
)
_PONG = json.dumps({"type": "pong"})
_PING = json.dumps({"type": "ping"})


class Anaxer(Dialect):
    provider = "anaxer"
    default_url = "wss://api.anaxer.com/v1/stream"
    channels = CHANNELS
    close_policies: ClassVar[dict[int, ClosePolicy]] = {
        1000: ClosePolicy("normal closure"),
        4001: ClosePolicy("invalid or missing API key", refusal=AuthenticationError),
        4002: ClosePolicy("rate limit exceeded", rate_limited=True),
        4003: ClosePolicy("plan limit on concurrent connections exceeded", rate_limited=True),
    }

    def __init__(self, connection: int, subscriptions: list[Subscription], form: str | None = None) -> None:
        super().__init__(connection, subscriptions)
        self.form = form  # None until the first frame tells
        self._ids: dict[str, str] = {}  # v1 subscription id -> channel
        self._live: dict[str, str] = {}  # channel -> the id of its current v1 subscription
        self._next_id = 0
        # The previous session of this connection learned the document form: subscribe at once
        # instead of waiting hello_timeout for a v1 greeting (provisional until the first frame).
        self._learned: str | None = None
        self._provisional = False

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        if key is None:  # never: the key is required
            return Handshake(url, {})
        if auth == "query":
            return Handshake(with_query(url, "key", key.reveal()), {})
        return Handshake(url, {"Authorization": f"Bearer {key.reveal()}"})

    @property
    def awaiting_hello(self) -> bool:
        return self.form is None

    def resume(self, previous: Dialect) -> None:
        if isinstance(previous, Anaxer) and previous.form == DOCUMENT and not previous._provisional:
            self._learned = DOCUMENT
        elif isinstance(previous, Anaxer) and previous._provisional:  # that session never heard a frame
            self._learned = previous._learned

    def on_open(self) -> list[Outgoing]:
        if self._learned != DOCUMENT or self.form is not None:
            return []
        self.form, self._provisional = DOCUMENT, True
        return [frame for sub in self.subscriptions.values() for frame in self._subscribe_frames(sub)]

    def on_hello_timeout(self) -> list[Outgoing]:
        if self.form is not None:
            return []
        self.form = DOCUMENT
        return [frame for sub in self.subscriptions.values() for frame in self._subscribe_frames(sub)]

    def ping(self) -> Outgoing | None:
        # v1 servers answer client pings; the document form's server pings us instead.
        return _PING if self.form == V1 else None

    # -- subscriptions
    def subscribe(self, sub: Subscription) -> list[Outgoing]:
        self.subscriptions[sub.channel] = sub
        return self._subscribe_frames(sub) if self.form is not None else []

    def unsubscribe(self, channel: str) -> list[Outgoing]:
        if self.subscriptions.pop(channel, None) is None or self.form is None:
            return []
        if self.form == DOCUMENT:
            return [json.dumps({"unsubscribe": channel})]
        # The channel's latest id: an older one may still await its unsubscribe's ack (churn).
        sub_id = self._live.pop(channel, None)
        if sub_id is None:
            return []
        return [json.dumps({"type": "unsubscribe", "id": sub_id})]

    def _subscribe_frames(self, sub: Subscription) -> list[Outgoing]:
        if self.form == DOCUMENT:
            message: dict[str, Any] = {"subscribe": sub.channel}
            if sub.filters:
                message["filters"] = sub.filters
            return [json.dumps(message)]
        self._next_id += 1
        sub_id = f"sub-{self._next_id}"
        self._ids[sub_id] = sub.channel
        self._live[sub.channel] = sub_id
        return [json.dumps({"type": "subscribe", "id": sub_id, "channel": sub.channel, "filters": sub.filters})]

    # -- frames
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        return self._dispatch(obj, received_at)

    def _dispatch(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        if obj.get("v") == 1 and "data" in obj:  # the hot path: a v1 data frame
            return self._v1_data(obj, received_at)
        kind = obj.get("type")
        if self._provisional:
            self._provisional = False
            if kind == "connected" and obj.get("v") == 1:  # the server has changed to the v1 form
                self.form = None
                self._ids.clear()
                self._live.clear()
        if self.form is None:
            return self._first_frame(obj, kind, received_at)
        if kind == "ping":
            return [Reply(_PONG)]
        if kind == "pong":
            return [Pong()]
        if kind == "subscribed" or kind == "unsubscribed":
            return self._ack(obj, kind, received_at)
        if kind == "error":
            return self._error(obj)
        if kind == "connected":
            return [Hello(obj)]
        if "slot" in obj:
            return self._document_data(obj, received_at)
        return self.unknown(obj, received_at, "unknown_type")

    def _first_frame(self, obj: dict[str, Any], kind: Any, received_at: int) -> list[Output]:
        if kind == "connected" and obj.get("v") == 1:
            self.form = V1
            limits = obj.get("limits")
            hello: list[Output] = [Hello(limits if isinstance(limits, dict) else {})]
        else:
            self.form = DOCUMENT
            hello = [Hello(obj)] if kind == "connected" else []
        replies: list[Output] = [
            Reply(frame) for sub in self.subscriptions.values() for frame in self._subscribe_frames(sub)
        ]
        if kind == "connected":
            return hello + replies
        # The object itself, not a re-serialization: dumping a deeply nested frame could overflow the stack.
        return replies + self._dispatch(obj, received_at)

    def _ack(self, obj: dict[str, Any], kind: str, received_at: int) -> list[Output]:
        channel = opt_str(obj.get("channel"))
        sub_id = opt_str(obj.get("id"))
        if channel is None and sub_id is not None:
            channel = self._ids.get(sub_id)
        if channel is None:
            return self.unknown(obj, received_at, "invalid_fields")
        if kind == "subscribed":
            return [Subscribed(channel)]
        if sub_id is not None:
            self._ids.pop(sub_id, None)
        return [Unsubscribed(channel)]

    def _error(self, obj: dict[str, Any]) -> list[Output]:
        code = opt_str(obj.get("code")) or "internal_error"
        message = opt_str(obj.get("message")) or code
        if code == "unauthorized":
            return [
                Fatal(AuthenticationError(f"anaxer refused the API key: {message}", provider="anaxer", error_code=code))
            ]
        channel = opt_str(obj.get("channel"))
        sub_id = opt_str(obj.get("id"))
        if channel is None and sub_id is not None:
            channel = self._ids.get(sub_id)
        if sub_id is not None and self.form == V1 and self._live.get(channel or "") != sub_id:
            self._ids.pop(sub_id, None)  # about an id the channel has moved on from (churn): not a refusal
            return [Notice(code, message)]
        if code in _SUBSCRIPTION_FATAL and channel is not None:
            self.subscriptions.pop(channel, None)
            self._live.pop(channel, None)
            if sub_id is not None:
                self._ids.pop(sub_id, None)
            return [Rejected(SubscriptionRejected(channel, code, message, provider="anaxer"))]
        return [Notice(code, message)]

    def _v1_data(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        data = obj.get("data")
        channel = opt_str(obj.get("channel"))
        if not isinstance(data, dict):
            return self.unknown(obj, received_at, "invalid_fields")
        event = normalize(data, channel, received_at, self.connection)
        if event is None:
            return self.unknown(obj, received_at, "invalid_fields")
        return [event]

    def _document_data(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        channel = opt_str(obj.get("channel"))
        if channel is None and len(self.subscriptions) == 1:
            channel = next(iter(self.subscriptions))
        event = normalize(obj, channel, received_at, self.connection)
        if event is None:
            return self.unknown(obj, received_at, "invalid_fields")
        return [event]


def _history(config: Any) -> Any:
    from pumpsync.providers.anaxer_history import AnaxerHistory  # requests is imported only when needed

    return AnaxerHistory(config)


def _greeting(frame: Mapping[str, Any]) -> bool:
    """Anaxer's v1 first frame: ``{"v": 1, "type": "connected", "limits": {...}}``."""
    return frame.get("v") == 1 and frame.get("type") == "connected"


SPEC = ProviderSpec(
    name="anaxer",
    greeting=_greeting,
    summary="Anaxer: channels creations, trades, graduations, prices; REST history (gap recovery, --since)",
    dialect=Anaxer,
    default_url=Anaxer.default_url,
    channels=CHANNELS,
    default_channels=("creations", "trades"),
    demo_channels=("creations", "trades", "graduations"),
    filters=dict.fromkeys(CHANNELS, FILTER_KEYS),
    auth_forms=("query", "header"),
    default_auth="header",
    heartbeat="app",  # v1: our pings; the document form's server pings us (Dialect.ping() is None then)
    history=_history,
)

__all__ = ["CHANNELS", "DOCUMENT", "FILTER_KEYS", "SPEC", "V1", "Anaxer", "Malformed", "infer_channel", "normalize"]
