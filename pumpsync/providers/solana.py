"""The pump.fun program's own events, from any Solana RPC node (JSON-RPC ``logsSubscribe``).

- Wire: JSON-RPC 2.0 over one WebSocket. ``logsSubscribe`` with ``mentions`` the program; the
  reply's ``result`` is the subscription id that ``logsNotification`` frames carry;
  ``logsUnsubscribe`` on close. No application heartbeat: WebSocket ping frames keep it open.
- One subscription serves every channel (``creations``, ``trades``, ``graduations``); channels
  and their filters are applied here, locally.
- Each ``Program data:`` line the pump program writes in a successful transaction is one Anchor
  event, decoded by the layout table of ``_borsh``. Failed transactions, ``Log truncated`` lines,
  unknown discriminators and undecodable data are counted (``Malformed`` reasons), never raised.
- Key optional: a node's key usually sits in its URL (``?api-key=``, or a path segment).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pumpsync._secrets import ApiKey
from pumpsync.errors import ConfigurationError
from pumpsync.options import ProviderOptions, option

# The decoder (re-exported: other on-chain sources import it from here; see _solana_tx.py).
from pumpsync.providers._borsh import (
    EVENT_CPI_TAG,
    PUMP,
    PUMP_AMM,
    Decoded,
    decode_cpi_data,
    decode_event,
    decode_program_data,
)
from pumpsync.providers._decode_drift import DRIFT, DecodeDriftCollector
from pumpsync.providers._pumpswap_pools import POOLS, Pool, PoolBook
from pumpsync.providers._solana_events import (
    CHANNELS,
    CURVE,
    FAILED_TX,
    FEE_PAYOUT,
    FILTERS,
    LOG_TRUNCATED,
    OTHER_POOL,
    PROGRAM_ID,
    PROGRAMS,
    PUMPSWAP,
    PUMPSWAP_PROGRAM_ID,
    REASONS,
    SYSTEM_PROGRAM,
    UNKNOWN_POOL,
    UNKNOWN_SUBSCRIPTION,
    UNMAPPED,
    Filter,
    compile_filter,
    compile_filters,
    decode_logs,
    normalize,
)
from pumpsync.providers._solana_rpc import (
    COMMITMENTS,
    DEFAULT_COMMITMENT,
    MAX_GAP_TRANSACTIONS,
    commitment_of,
    http_url,
)
from pumpsync.providers._solana_tx import INNER, LOGS, TRUNCATED, Instruction, decode_transaction
from pumpsync.providers.base import (
    AuthenticationError,
    ClosePolicy,
    Dialect,
    Fatal,
    Handshake,
    Malformed,
    Notice,
    Output,
    PlanError,
    Reconnect,
    Refetch,
    Reply,
    Subscribed,
    Subscription,
    Tick,
    opt_int,
    opt_slot,
    opt_str,
)
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import HistorySource, Outgoing, ProviderSpec

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

DEFAULT_URL = "wss://api.mainnet-beta.solana.com"

# JSON-RPC error codes (standard, and those Solana nodes and RPC providers use).
_RATE_LIMIT_CODES = frozenset({429, -32429, -32005})
_AUTH_CODES = frozenset({401, 403, -32401, -32403})
_REFUSED_CODES = frozenset({-32601, -32602})  # method not found (refused by the node or its plan), bad params
_REFUSAL_WORDS = re.compile(r"\b(?:not allowed|not supported|not available|disabled|plan|upgrade)\b")


# ---------------------------------------------------------------- the dialect


class Solana(Dialect):
    provider = "solana"
    default_url = DEFAULT_URL
    channels = CHANNELS
    config_options = ("commitment",)
    string_bracket = b" invoke ["  # every invocation's log line: "Program <id> invoke [1]"
    close_policies: ClassVar[dict[int, ClosePolicy]] = {
        1000: ClosePolicy("normal closure"),
        1001: ClosePolicy("node going away"),
        1008: ClosePolicy("policy violation (rate limit or refused key)", rate_limited=True),
        1011: ClosePolicy("node error (temporary)"),
        1013: ClosePolicy("try again later", rate_limited=True),
    }

    def __init__(
        self, connection: int, subscriptions: list[Subscription], commitment: str | None = DEFAULT_COMMITMENT
    ) -> None:
        super().__init__(connection, subscriptions)
        commitment = commitment or DEFAULT_COMMITMENT
        if commitment not in COMMITMENTS:
            raise ConfigurationError("commitment", f"{commitment!r} is not one of {', '.join(COMMITMENTS)}")
        self.commitment = commitment
        self.filters = compile_filters({sub.channel: sub.filters for sub in subscriptions})
        self._next_id = 0
        self._pending: dict[int, str] = {}  # request id -> "subscribe" / "unsubscribe"
        self._subscription: int | None = None  # the node's id of our logsSubscribe
        # PumpSwap's logs (a graduated coin's trades; "mentions" takes one address): a second subscription
        self._amm_subscription: int | None = None
        self._amm_subscribing = False
        self._subscribing = False
        self._answered = False  # the node has answered a logsSubscribe in this session
        self._opened = False
        self._clock: int | None = None  # the node's id of our slotSubscribe (the data clock)

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        if key and auth == "query":
            return Handshake(with_query(url, "api-key", key.reveal()), {})  # Helius's spelling
        if key and auth == "header":
            return Handshake(url, {"Authorization": f"Bearer {key.reveal()}"})
        return Handshake(url, {})  # the key, if any, is already in the URL

    def _request(self, method: str, params: list[Any], purpose: str) -> str:
        self._next_id += 1
        self._pending[self._next_id] = purpose
        return json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})

    def _subscribe_frame(self) -> str:
        self._subscribing = True
        return self._request(
            "logsSubscribe", [{"mentions": [PROGRAM_ID]}, {"commitment": self.commitment}], "subscribe"
        )

    def _amm_frames(self) -> list[Outgoing]:
        """PumpSwap's logsSubscribe, once, while the trades channel is wanted."""
        if "trades" not in self.subscriptions or self._amm_subscription is not None or self._amm_subscribing:
            return []
        self._amm_subscribing = True
        params = [{"mentions": [PUMPSWAP_PROGRAM_ID]}, {"commitment": self.commitment}]
        return [self._request("logsSubscribe", params, "subscribe_amm")]

    def on_open(self) -> list[Outgoing]:
        self._opened = True
        self._amm_subscription, self._amm_subscribing = None, False
        # The data clock (SPEC.data_clock): slots advancing while no logsNotification comes means the
        # logs subscription is dead, however well the node answers pings. PumpSwap's logsSubscribe
        # follows once the pump.fun one is answered.
        frames = [self._subscribe_frame()] if self.subscriptions else []
        return [*frames, self._request("slotSubscribe", [], "clock")]

    def on_close(self) -> list[Outgoing]:
        """Frames to send before a deliberate close: the node frees the subscriptions at once."""
        frames: list[Outgoing] = []
        if self._amm_subscription is not None:
            amm_id, self._amm_subscription = self._amm_subscription, None
            frames.append(self._request("logsUnsubscribe", [amm_id], "unsubscribe"))
        if self._subscription is None:
            return frames
        sub_id, self._subscription = self._subscription, None
        return [self._request("logsUnsubscribe", [sub_id], "unsubscribe"), *frames]

    @property
    def awaiting_subscription(self) -> bool:
        """A ``logsSubscribe`` was sent and not answered yet (a node may never answer)."""
        return self._subscribing

    @property
    def awaiting_hello(self) -> bool:
        # The session's first logsSubscribe unanswered within the hello timeout: the supervisor reconnects.
        return self._subscribing and not self._answered

    def on_hello_timeout(self) -> list[Outgoing]:
        return []  # nothing to send: still awaiting, so the session ends

    # -- channels: one node subscription serves them all
    def subscribe(self, sub: Subscription) -> list[Outgoing]:
        self.filters[sub.channel] = compile_filter(sub.channel, sub.filters)
        self.subscriptions[sub.channel] = sub
        if self._opened and self._subscription is None and not self._subscribing:
            return [self._subscribe_frame()]
        return self._amm_frames() if self._subscription is not None else []

    def unsubscribe(self, channel: str) -> list[Outgoing]:
        self.subscriptions.pop(channel, None)
        self.filters.pop(channel, None)
        if not self.subscriptions:
            return self.on_close()
        if channel == "trades" and self._amm_subscription is not None:
            amm_id, self._amm_subscription = self._amm_subscription, None
            return [self._request("logsUnsubscribe", [amm_id], "unsubscribe")]
        return []

    # -- frames
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        if obj.get("method") == "logsNotification":
            return self._notification(obj, received_at)
        if obj.get("method") == "slotNotification":
            params = obj.get("params")
            mine = isinstance(params, dict) and params.get("subscription") == self._clock
            return [Tick()] if mine and self._clock is not None else [Malformed(UNKNOWN_SUBSCRIPTION)]
        request = obj.get("id")
        if type(request) is int and request in self._pending:
            return self._reply(self._pending.pop(request), obj)
        if "id" in obj and ("result" in obj or "error" in obj):
            return [Malformed("protocol")]  # a reply to nothing we asked
        return self.unknown(obj, received_at, "unknown_type")

    def _notification(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        params = obj.get("params")
        if not isinstance(params, dict):
            return self.unknown(obj, received_at, "invalid_fields")
        sub_id = params.get("subscription")
        if sub_id is None or (sub_id != self._subscription and sub_id != self._amm_subscription):
            return [Malformed(UNKNOWN_SUBSCRIPTION)]  # an old subscription's last notifications
        result = params.get("result")
        context = result.get("context") if isinstance(result, dict) else None
        value = result.get("value") if isinstance(result, dict) else None
        if not isinstance(value, dict) or not isinstance(context, dict):
            return self.unknown(obj, received_at, "invalid_fields")
        if value.get("err") is not None:
            return [Malformed(FAILED_TX)]  # its events never happened
        logs = value.get("logs")
        if not isinstance(logs, list):
            return [] if logs is None else self.unknown(obj, received_at, "invalid_fields")
        out: list[Output] = []
        signature = opt_str(value.get("signature"))
        slot = opt_slot(context.get("slot"))
        truncated = decode_logs(logs, signature, slot, received_at, self.connection, False, self.filters, out)
        if signature and (truncated or UNKNOWN_POOL in out):
            # The rest of its events (a cut log: getTransaction's inner instructions), or a PumpSwap
            # trade in a pool not known yet: getTransaction's instruction accounts name its mint (the
            # pool is learned, the trade comes with backfill=True). Bounded by the recovery's backlog.
            out.append(Refetch(signature, slot))
        return out

    def _reply(self, purpose: str, obj: dict[str, Any]) -> list[Output]:
        error = obj.get("error")
        if purpose == "clock" and error is None:
            self._clock = opt_int(obj.get("result"))
            return []
        if purpose == "subscribe_amm":
            self._amm_subscribing = False
            if error is None:
                amm_id = opt_int(obj.get("result"))
                if amm_id is None:
                    return [Reconnect("protocol", "logsSubscribe answered without a subscription id")]
                self._amm_subscription = amm_id
                if "trades" not in self.subscriptions:  # the channel went while we waited
                    self._amm_subscription = None
                    return [Reply(self._request("logsUnsubscribe", [amm_id], "unsubscribe"))]
                return [Subscribed("trades")]  # now every trade is live, PumpSwap's too
            return [self._subscribe_error(error)]
        if purpose == "subscribe":
            self._subscribing = False
            self._answered = True
            if error is None:
                sub_id = opt_int(obj.get("result"))
                if sub_id is None:
                    return [Reconnect("protocol", "logsSubscribe answered without a subscription id")]
                self._subscription = sub_id
                if not self.subscriptions:  # every channel went while we waited
                    return [Reply(frame) for frame in self.on_close()]
                # Trades are live once PumpSwap's subscription is answered too: a gap's fetch waits for
                # every channel to be live, so that nothing falls between its history and the live stream.
                amm = self._amm_frames()
                subscribed: list[Output] = [Subscribed(ch) for ch in self.subscriptions if not (amm and ch == "trades")]
                return subscribed + [Reply(frame) for frame in amm]
            return [self._subscribe_error(error)]
        if error is not None:
            code, message = _error_parts(error)
            return [Notice("rpc_error", f"{purpose} failed ({code}): {message}")]  # a bounded code: a metric label
        return []

    def _subscribe_error(self, error: Any) -> Output:
        code, message = _error_parts(error)
        lowered = message.lower()
        if code in _RATE_LIMIT_CODES or "rate limit" in lowered or "too many" in lowered:
            return Reconnect("rate_limited", f"solana node rate limit ({code}): {message}", rate_limited=True)
        if code in _AUTH_CODES or "api key" in lowered or "api-key" in lowered or "unauthorized" in lowered:
            return Fatal(
                AuthenticationError(f"solana node refused the key: {message}", provider="solana", error_code=str(code))
            )
        if code in _REFUSED_CODES or _REFUSAL_WORDS.search(lowered):
            return Fatal(
                PlanError(f"solana node refused logsSubscribe: {message}", provider="solana", error_code=str(code))
            )
        return Reconnect("subscribe_failed", f"solana node could not subscribe ({code}): {message}")


def _error_parts(error: Any) -> tuple[int | str, str]:
    if not isinstance(error, dict):
        return "error", str(error)[:200]
    code = opt_int(error.get("code"))
    message = opt_str(error.get("message")) or "no message"
    return (code if code is not None else "error"), message[:500]


def check_config(config: ClientConfig) -> None:
    """What the generic checks cannot know: the commitment, filter values, the gap ceiling."""
    commitment_of(config)
    compile_filters({sub.channel: sub.filters for sub in config.channels})
    ceiling = getattr(config, "max_gap_transactions", None)
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, int) or ceiling < 1):
        raise ConfigurationError("max_gap_transactions", f"{ceiling!r} is not a positive whole number")


def _history(config: ClientConfig) -> HistorySource:
    from pumpsync.providers.solana_history import make_history  # it imports this module

    return make_history(config)


@dataclass(frozen=True)
class SolanaOptions(ProviderOptions):
    """Solana's own options (``options=pumpsync.SolanaOptions(...)``)."""

    commitment: Literal["processed", "confirmed", "finalized"] = option(
        DEFAULT_COMMITMENT, "Commitment level of the logs subscription.", choices=COMMITMENTS
    )
    max_gap_transactions: int = option(MAX_GAP_TRANSACTIONS, "Transactions one gap recovery may fetch.", check="count")


SPEC = ProviderSpec(
    name="solana",
    summary="Solana: the pump.fun program's events from any RPC node (logsSubscribe, no key); getTransaction history",
    dialect=Solana,
    default_url=DEFAULT_URL,
    channels=CHANNELS,
    default_channels=CHANNELS,
    filters=FILTERS,
    auth_forms=("none", "query", "header"),
    default_auth="none",
    key_required=False,
    heartbeat="ws_ping",
    data_clock=True,  # slotSubscribe: slots advancing with no logsNotification = a dead subscription
    max_frame_size=32 * 1024 * 1024,
    history=_history,
    filter_reasons=(UNMAPPED.reason, FEE_PAYOUT.reason, OTHER_POOL.reason, UNKNOWN_POOL.reason),
    metrics=DecodeDriftCollector,
    malformed_reasons=REASONS,
    options=SolanaOptions,
    check=check_config,
)

__all__ = [
    "CHANNELS",
    "COMMITMENTS",
    "CURVE",
    "DEFAULT_COMMITMENT",
    "DRIFT",
    "EVENT_CPI_TAG",
    "FILTERS",
    "INNER",
    "LOGS",
    "LOG_TRUNCATED",
    "MAX_GAP_TRANSACTIONS",
    "POOLS",
    "PROGRAMS",
    "PROGRAM_ID",
    "PUMP",
    "PUMPSWAP",
    "PUMPSWAP_PROGRAM_ID",
    "PUMP_AMM",
    "REASONS",
    "SPEC",
    "SYSTEM_PROGRAM",
    "TRUNCATED",
    "Decoded",
    "Filter",
    "Instruction",
    "Pool",
    "PoolBook",
    "Solana",
    "check_config",
    "commitment_of",
    "compile_filter",
    "compile_filters",
    "decode_cpi_data",
    "decode_event",
    "decode_logs",
    "decode_program_data",
    "decode_transaction",
    "http_url",
    "normalize",
]
