"""PumpPortal's data API (``wss://pumpportal.fun/api/data``), with its traps made visible.

- Key optional (``?api-key=``). Free: launches (``subscribeNewToken``) and migrations
  (``subscribeMigration``, which has no unsubscribe). Trades by mint (``subscribeTokenTrade``) or
  by wallet (``subscribeAccountTrade``) need a funded key; without one the server acknowledges,
  sends one explanatory message and then nothing. That message becomes a ``Rejected``; a trade
  channel acknowledged but silent while launches flow becomes a ``Notice``.
- Acknowledgements are bare texts (``{"message": ...}``) that name no channel; the keys
  acknowledgements are matched to the subscribe messages in the order they were sent.
- Frames carry no timestamp, slot or sequence number; amounts are floats in SOL and whole
  tokens (``2`` and ``2.0`` alike). A create carries the creator's first buy and the curve's
  virtual reserves after it; its ``bondingCurveKey`` (occasionally wrong, the operator says)
  stays in ``raw``. Launches from other launchpads (``pool`` other than ``pump``) share the
  feed and are dropped unless a ``pools`` filter asks for them.
- The operator's limits: 5,000 keys per message (longer lists are split), 200 subscription
  messages per second (paced here on the ``received_at`` clock, see ``_release``), one connection.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pumpsync._secrets import ApiKey, redact
from pumpsync.errors import ConfigurationError, PlanError, SubscriptionRejected
from pumpsync.events import MIGRATION, NEW_TOKEN, TRADE, Event, EventKind
from pumpsync.options import ProviderOptions, option
from pumpsync.providers import _pumpportal_wire as wire
from pumpsync.providers._pumpportal_wire import (
    ACCOUNT_TRADES,
    CHANNELS,
    DEFAULT_CHANNELS,
    MIGRATIONS,
    NEW_TOKENS,
    PROVIDER,
    TOKEN_TRADES,
    TRADE_CHANNELS,
    check_filters,
    merge,
    remove,
)
from pumpsync.providers.base import (
    ClosePolicy,
    Dialect,
    Dropped,
    Fatal,
    Handshake,
    Malformed,
    Notice,
    Output,
    Rejected,
    Reply,
    Subscribed,
    Subscription,
    event_defaults_after,
    opt_str,
    ratio,
)
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import Outgoing, ProviderSpec

if TYPE_CHECKING:
    from pumpsync.providers.spec import ClientConfig

_INF = float("inf")
# A trade's event positionally: the fields up to price_sol, then the class's defaults around market_cap_sol and venue.
_AFTER_PRICE = event_defaults_after("price_sol")
_MARKET_CAP_AT = Event._fields.index("market_cap_sol") - Event._fields.index("price_sol") - 1
_VENUE_AT = Event._fields.index("venue") - Event._fields.index("price_sol") - 1
_UP_TO_MARKET_CAP = _AFTER_PRICE[:_MARKET_CAP_AT]
_UP_TO_VENUE = _AFTER_PRICE[_MARKET_CAP_AT + 1 : _VENUE_AT]
_AFTER_VENUE = _AFTER_PRICE[_VENUE_AT + 1 :]
_new_tuple = tuple.__new__

_BANNED = ClosePolicy(
    "refused by PumpPortal, probably a ban (the operator bans clients with more than one connection for an hour)",
    rate_limited=True,
)


def check_config(config: ClientConfig) -> None:
    """Configuration-time checks (``ProviderSpec.check``): every channel's filters, the silence option."""
    for sub in config.channels:
        check_filters(sub.channel, sub.filters)
    silent = getattr(config, "silent_trades_after", None)
    if silent is not None and (isinstance(silent, bool) or not isinstance(silent, (int, float)) or not silent > 0):
        raise ConfigurationError("silent_trades_after", f"{silent!r} is not a positive number of seconds")


# ---------------------------------------------------------------- the dialect


class PumpPortal(Dialect):
    provider = PROVIDER
    default_url = "wss://pumpportal.fun/api/data"
    channels = CHANNELS
    # The API documents no close codes; every close is retried.
    close_policies: ClassVar[dict[int, ClosePolicy]] = {1000: ClosePolicy("normal closure")}
    # A refusal at the upgrade is a ban (the operator's word for several connections), not a plan refusal.
    http_policies: ClassVar[dict[int, ClosePolicy]] = dict.fromkeys((403, 429), _BANNED)
    # subscribe(sub) with a channel already subscribed sends only the difference (keys added or removed);
    # merge/remove say what the client's registry holds after subscribe/unsubscribe.
    diffs: ClassVar[bool] = True
    merge = staticmethod(merge)
    remove = staticmethod(remove)

    config_options: ClassVar[tuple[str, ...]] = ("silent_trades_after",)

    def __init__(
        self, connection: int, subscriptions: list[Subscription], silent_trades_after: float | None = None
    ) -> None:
        super().__init__(connection, [merge(None, sub) for sub in subscriptions])
        self.silent_after_ms = int((silent_trades_after or wire.SILENT_TRADES_AFTER) * 1000)
        self._key: ApiKey | None = None
        self._pools = self._pools_of(self.subscriptions.get(NEW_TOKENS))
        # Pacing: frames not yet released, each with the trade channel whose keys ack it awaits.
        self._queue: deque[tuple[str, str | None]] = deque()
        self._window_start: int | None = None
        self._window_sent = 0
        self._awaiting_keys_ack: deque[str] = deque()
        self._acked: set[str] = set()
        self._keysets = self._keysets_of()
        self._unfunded: str | None = None  # the rejection code once the server has said so
        # Silence watch, per acknowledged trade channel: [acknowledged at (ms), launches since].
        self._watch: dict[str, list[int]] = {}

    # -- connecting
    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        """The key, if any, goes in ``?api-key=``; without one only the free channels stream."""
        if not key:
            return Handshake(url, {})
        self._key = key
        return Handshake(with_query(url, "api-key", key.reveal()), {})

    def on_open(self) -> list[Outgoing]:
        frames: list[tuple[str, str | None]] = []
        for sub in self.subscriptions.values():
            frames += self._frames(None, sub)
        return self._release(frames)

    # -- subscriptions
    def subscribe(self, sub: Subscription) -> list[Outgoing]:
        """Set ``sub.channel`` to ``sub``; only the difference from what was asked before is sent."""
        sub = Subscription(sub.channel, check_filters(sub.channel, sub.filters))
        old = self.subscriptions.get(sub.channel)
        self.subscriptions[sub.channel] = sub
        self._keysets = self._keysets_of()
        if sub.channel == NEW_TOKENS:
            self._pools = self._pools_of(sub)
        return self._release(self._frames(old, sub))

    def unsubscribe(self, channel: str) -> list[Outgoing]:
        old = self.subscriptions.pop(channel, None)
        self._watch.pop(channel, None)
        self._acked.discard(channel)
        self._keysets = self._keysets_of()
        if old is None:
            return []
        method = wire.METHODS[channel][1]
        if method is None:  # migrations: the API has no unsubscribe; they are dropped here instead
            return []
        if channel in TRADE_CHANNELS:
            return self._release(
                [(wire.method_message(method, chunk), None) for chunk in wire.key_chunks(old.filters["keys"])]
            )
        return self._release([(wire.method_message(method), None)])

    def _frames(self, old: Subscription | None, new: Subscription) -> list[tuple[str, str | None]]:
        subscribe, unsubscribe = wire.METHODS[new.channel]
        if new.channel not in TRADE_CHANNELS:
            return [] if old is not None else [(wire.method_message(subscribe), None)]
        before = old.filters["keys"] if old is not None else []
        after = new.filters["keys"]
        kept = set(before)
        added = [k for k in after if k not in kept]
        wanted = set(after)
        removed = [k for k in before if k not in wanted]
        frames: list[tuple[str, str | None]] = []
        if removed and unsubscribe is not None:
            frames += [(wire.method_message(unsubscribe, chunk), None) for chunk in wire.key_chunks(removed)]
        frames += [(wire.method_message(subscribe, chunk), new.channel) for chunk in wire.key_chunks(added)]
        return frames

    def _release(self, frames: Iterable[tuple[str, str | None]] = ()) -> list[Outgoing]:
        """Queue ``frames`` and return those the current window still allows (in order)."""
        self._queue.extend(frames)
        out: list[Outgoing] = []
        queue = self._queue
        while queue and self._window_sent < wire.MESSAGES_PER_WINDOW:
            text, channel = queue.popleft()
            self._window_sent += 1
            if channel is not None:
                self._awaiting_keys_ack.append(channel)
            out.append(text)
        return out

    @staticmethod
    def _pools_of(sub: Subscription | None) -> frozenset[str]:
        pools = sub.filters.get("pools") if sub is not None else None
        return frozenset(pools) if pools else frozenset({wire.PUMP_POOL})

    # -- frames
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        out: list[Output] = []
        start = self._window_start
        if start is None:
            self._window_start = received_at  # the first window began at the opening; it ends a second from now
        elif received_at - start >= wire.WINDOW_MS:
            self._window_start, self._window_sent = received_at, 0
            if self._queue:
                out = [Reply(text) for text in self._release()]
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            out.append(obj)
            return out
        tx = obj.get("txType")
        if tx == "buy" or tx == "sell":
            out += self._trade(obj, tx, received_at)
        elif tx == "create":
            out += self._create(obj, received_at)
        elif tx == "migrate":
            out += self._migrate(obj, received_at)
        elif "message" in obj and tx is None:
            out += self._control(obj, received_at)
        elif "errors" in obj and tx is None:
            out.append(self._errors(obj["errors"]))
        else:
            out += self.unknown(obj, received_at, "unknown_type")
        return out

    def _trade(self, obj: dict[str, Any], side: str, received_at: int) -> list[Output]:
        get = obj.get
        mint, signature = wire.read_address(get("mint")), wire.read_signature(get("signature"))
        trader = wire.read_address(get("traderPublicKey"))
        sol, tokens, market_cap = get("solAmount"), get("tokenAmount"), get("marketCapSol")
        # read_amounts' common case inline (three finite floats >= 0: the bulk path); anything else goes through it
        if not (
            type(sol) is float
            and type(tokens) is float
            and type(market_cap) is float
            and 0.0 <= sol < _INF
            and 0.0 <= tokens < _INF
            and 0.0 <= market_cap < _INF
        ):
            amounts = wire.read_amounts(obj, wire.TRADE_AMOUNTS)
            if amounts is None:
                return self.unknown(obj, received_at, "invalid_fields")
            sol, tokens, market_cap = amounts
        if mint is None or signature is None:
            return self.unknown(obj, received_at, "invalid_fields")
        channel = self._trade_channel(mint, trader)
        if channel is None:
            return [Dropped(wire.UNSUBSCRIBED)]
        if self._watch:
            self._watch.pop(channel, None)  # it delivers: not the paywall
        pool = get("pool", wire.PUMP_POOL)
        price = sol / tokens if sol is not None and tokens else None  # ratio(), inline
        # positional (a third of keywords' cost), no slot and no timestamp: PumpPortal's frames carry neither
        head = (TRADE, PROVIDER, mint, signature, None, None, received_at, self.connection, False, obj, channel, side,
                sol, tokens, trader, price if price is None or price - price == 0.0 else None)  # fmt: skip
        venue = wire.VENUES.get(pool) if type(pool) is str else None
        return [_new_tuple(Event, head + _UP_TO_MARKET_CAP + (market_cap,) + _UP_TO_VENUE + (venue,) + _AFTER_VENUE)]

    def _trade_channel(self, mint: str, trader: str | None) -> str | None:
        """Which subscribed trade channel a trade belongs to (by mint first, then by wallet)."""
        subs = self.subscriptions
        tokens, accounts = subs.get(TOKEN_TRADES), subs.get(ACCOUNT_TRADES)
        if tokens is None and accounts is None:
            return None
        if tokens is not None and mint in self._keysets[TOKEN_TRADES]:
            return TOKEN_TRADES
        if accounts is not None and trader in self._keysets[ACCOUNT_TRADES]:
            return ACCOUNT_TRADES
        return None  # a key we never asked for (or no longer want): filtered, as the README says

    def _keysets_of(self) -> dict[str, frozenset[str]]:
        """Each trade channel's keys as a set (a trade looks its mint or wallet up in them)."""
        subs = self.subscriptions
        return {ch: frozenset(subs[ch].filters["keys"]) if ch in subs else frozenset() for ch in TRADE_CHANNELS}

    def _create(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        mint, signature = wire.read_address(obj.get("mint")), wire.read_signature(obj.get("signature"))
        if mint in wire.QUOTE_MINTS:
            return [Malformed("invalid_fields")]  # a mislabelled frame: never delivered as a launch
        amounts = wire.read_amounts(obj, wire.CREATE_AMOUNTS)
        if mint is None or signature is None or amounts is None:
            return self.unknown(obj, received_at, "invalid_fields")
        initial_tokens, initial_sol, v_sol, v_tokens, market_cap = amounts
        out: list[Output] = self._launch_seen(received_at) if self._watch else []
        if NEW_TOKENS not in self.subscriptions:
            out.append(Dropped(wire.UNSUBSCRIBED))
            return out
        # Frames from before the field existed were all pump.fun's; a non-string pool is no known pool.
        pool = opt_str(obj.get("pool", wire.PUMP_POOL))
        if pool not in self._pools:
            out.append(Dropped(wire.OTHER_POOL))
            return out
        out.append(
            self._event(
                NEW_TOKEN,
                obj,
                mint,
                signature,
                received_at,
                NEW_TOKENS,
                name=opt_str(obj.get("name")),
                symbol=opt_str(obj.get("symbol")),
                creator=wire.read_address(obj.get("traderPublicKey")),
                uri=opt_str(obj.get("uri")),
                market_cap_sol=market_cap,
                price_sol=ratio(v_sol, v_tokens),  # the bonding curve's price: virtual SOL over virtual tokens
                # In a create, initialBuy/solAmount are the creator's first buy (same transaction).
                initial_buy_tokens=initial_tokens,
                initial_buy_sol=initial_sol,
                virtual_sol_reserves=v_sol,
                virtual_token_reserves=v_tokens,
                pool=pool,
            )
        )
        return out

    def _migrate(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        mint, signature = wire.read_address(obj.get("mint")), wire.read_signature(obj.get("signature"))
        if mint is None or signature is None:
            return self.unknown(obj, received_at, "invalid_fields")
        if MIGRATIONS not in self.subscriptions:
            return [Dropped(wire.UNSUBSCRIBED)]
        return [self._event(MIGRATION, obj, mint, signature, received_at, MIGRATIONS)]

    def _event(
        self,
        kind: EventKind,
        obj: dict[str, Any],
        mint: str,
        signature: str,
        received_at: int,
        channel: str,
        **fields: Any,
    ) -> Event:
        # No slot and no timestamp: PumpPortal's frames carry neither.
        return Event(
            kind, PROVIDER, mint, signature, None, None, received_at, self.connection, False, obj, channel, **fields
        )

    # -- control texts
    def _control(self, obj: dict[str, Any], received_at: int) -> list[Output]:
        text = obj["message"]
        if type(text) is not str:
            return self.unknown(obj, received_at, "invalid_fields")
        words = wire.text_words(text[: wire.MAX_TEXT])
        if words in wire.ACKS:
            channel = wire.ACKS[words]
            if channel is not None:
                return self._acknowledged(channel, received_at)
            if not self._awaiting_keys_ack:
                return []  # an ack of a message from before a rejection, or one we did not count
            return self._acknowledged(self._awaiting_keys_ack.popleft(), received_at)
        if words in wire.KNOWN_TEXTS:
            return [Notice(wire.PROVIDER_MESSAGE, self._bounded(text))]
        if wire.is_refusal(words):
            self._unfunded = wire.UNFUNDED_KEY if self._key else wire.NO_API_KEY
            self._awaiting_keys_ack.clear()
            return self._rejections([ch for ch in TRADE_CHANNELS if ch in self.subscriptions], text)
        # Neither a known ack nor a refusal: counted and logged as a notice, and taken for no
        # acknowledgement (a trade channel awaiting one stays unacknowledged: its silence is watched).
        return [Notice(wire.UNRECOGNISED, self._bounded(text))]

    def _acknowledged(self, channel: str, received_at: int) -> list[Output]:
        if channel not in self.subscriptions or channel in self._acked:
            return []  # one Subscribed per channel and session (a long key list is acknowledged per chunk)
        if channel in TRADE_CHANNELS and self._unfunded is not None:
            return self._rejections([channel], wire.UNFUNDED)
        self._acked.add(channel)
        if channel in TRADE_CHANNELS:
            self._watch[channel] = [received_at, 0]
        return [Subscribed(channel)]

    def _rejections(self, channels: list[str], text: str) -> list[Output]:
        """``channels`` refused; when that leaves nothing subscribed, the stream ends with the
        refusal (a PlanError) instead of idling on a socket that will never deliver."""
        out: list[Output] = [self._reject(channel, text) for channel in channels]
        if out and not self.subscriptions:
            code = self._unfunded or wire.UNFUNDED_KEY
            refused = ", ".join(channels)
            out.append(
                Fatal(
                    PlanError(
                        f"PumpPortal refused every subscribed channel ({refused}): "
                        + (
                            "trade channels need an API key funded with at least 0.02 SOL"
                            if code == wire.NO_API_KEY
                            else "the API key's wallet is not funded (at least 0.02 SOL)"
                        ),
                        provider=PROVIDER,
                        error_code=code,
                    )
                )
            )
        return out

    def _reject(self, channel: str, text: str) -> Rejected:
        self.subscriptions.pop(channel, None)
        self._watch.pop(channel, None)
        self._keysets = self._keysets_of()
        code = self._unfunded or wire.UNFUNDED_KEY
        why = (
            "no API key was given; trade channels need one funded with at least 0.02 SOL"
            if code == wire.NO_API_KEY
            else "the API key's wallet is not funded (PumpPortal wants at least 0.02 SOL for trade channels)"
        )
        return Rejected(SubscriptionRejected(channel, code, f"{why}: {self._bounded(text)}", provider=PROVIDER))

    def _launch_seen(self, received_at: int) -> list[Output]:
        """A launch arrived: report trade channels acknowledged long ago that never delivered."""
        out: list[Output] = []
        for channel, watch in list(self._watch.items()):
            watch[1] += 1
            silent_ms = received_at - watch[0]
            if silent_ms >= self.silent_after_ms and watch[1] >= wire.SILENT_MIN_LAUNCHES:
                del self._watch[channel]  # once per channel and session
                out.append(
                    Notice(
                        wire.TRADES_SILENT,
                        f"{channel} was acknowledged {silent_ms / 1000:.0f} s ago and has delivered nothing while "
                        f"{watch[1]} launches arrived: PumpPortal sends no trades for an unfunded API key",
                    )
                )
        return out

    def _errors(self, errors: Any) -> Notice:
        text = errors if isinstance(errors, str) else json.dumps(errors, default=str)
        lowered = text.lower()
        if "key" in lowered and ("invalid" in lowered or "unauthori" in lowered):
            code = "invalid_api_key"
        elif "limit" in lowered or "too many" in lowered:
            code = "rate_limited"
        else:
            code = "provider_error"
        return Notice(code, self._bounded(text))

    def _bounded(self, text: str) -> str:
        return redact(text[: wire.MAX_TEXT], self._key)


@dataclass(frozen=True)
class PumpPortalOptions(ProviderOptions):
    """PumpPortal's own options (``options=pumpsync.PumpPortalOptions(...)``)."""

    silent_trades_after: float = option(
        wire.SILENT_TRADES_AFTER,
        "Seconds an acknowledged trade channel may stay silent while launches flow before it is reported.",
        check="seconds",
    )


SPEC = ProviderSpec(
    name=PROVIDER,
    summary="PumpPortal's data API: free launches and migrations; trades with a funded key",
    dialect=PumpPortal,
    default_url=PumpPortal.default_url,
    channels=CHANNELS,
    default_channels=DEFAULT_CHANNELS,
    filters={NEW_TOKENS: ("pools",), MIGRATIONS: (), TOKEN_TRADES: ("keys",), ACCOUNT_TRADES: ("keys",)},
    auth_forms=("query",),
    default_auth="query",
    key_required=False,
    # No application heartbeat exists; a dead socket is found by staleness (the feed's 25-45 launches
    # a minute make a minute of silence a dead socket, not a quiet market).
    heartbeat="none",
    max_connections=1,
    one_client_per_host=True,
    max_connections_reason=(
        "PumpPortal bans clients that open more than one connection (for an hour); "
        "every subscription shares the one socket"
    ),
    history=None,
    options=PumpPortalOptions,
    check=check_config,
    filter_reasons=(wire.OTHER_POOL, wire.UNSUBSCRIBED),
    trades_hint=(
        "PumpPortal sends trades only for the mints or wallets you name, to a funded key: "
        '--channel \'token_trades:{"keys": ["MINT", ...]}\' (account_trades for wallets) and --api-key'
    ),
)

__all__ = [
    "ACCOUNT_TRADES",
    "CHANNELS",
    "MIGRATIONS",
    "NEW_TOKENS",
    "SPEC",
    "TOKEN_TRADES",
    "PumpPortal",
    "check_filters",
    "merge",
    "remove",
]
