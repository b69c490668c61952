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
import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pumpsync._bounds import is_address
from pumpsync._secrets import ApiKey, redact
from pumpsync.errors import ConfigurationError, PlanError, SubscriptionRejected
from pumpsync.events import MIGRATION, NEW_TOKEN, TRADE, Event, EventKind
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
    opt_amount,
    opt_str,
    ratio,
)
from pumpsync.providers.openpump import with_query
from pumpsync.providers.spec import ProviderSpec

if TYPE_CHECKING:
    from pumpsync.config import ClientConfig

PROVIDER = "pumpportal"
NEW_TOKENS = "new_tokens"
MIGRATIONS = "migrations"
TOKEN_TRADES = "token_trades"
ACCOUNT_TRADES = "account_trades"
CHANNELS = (NEW_TOKENS, MIGRATIONS, TOKEN_TRADES, ACCOUNT_TRADES)
DEFAULT_CHANNELS = (NEW_TOKENS, MIGRATIONS)
TRADE_CHANNELS = (TOKEN_TRADES, ACCOUNT_TRADES)

# channel -> (subscribe method, unsubscribe method or None where the API has none)
METHODS: dict[str, tuple[str, str | None]] = {
    NEW_TOKENS: ("subscribeNewToken", "unsubscribeNewToken"),
    MIGRATIONS: ("subscribeMigration", None),
    TOKEN_TRADES: ("subscribeTokenTrade", "unsubscribeTokenTrade"),
    ACCOUNT_TRADES: ("subscribeAccountTrade", "unsubscribeAccountTrade"),
}

# The operator's published limits.
MAX_KEYS_PER_MESSAGE = 5_000
MAX_MESSAGES_PER_SECOND = 200
# Messages released per window of at least WINDOW_MS on the received_at clock. Frames of one window
# go out between its start and the next window's, so any real second sees at most two windows' worth.
MESSAGES_PER_WINDOW = 95
WINDOW_MS = 1_000

# Control texts, as captured (free-sources.md section 2).
ACK_NEW_TOKENS = "Successfully subscribed to token creation events."
ACK_MIGRATIONS = "Subscribed to 'migration' events."
ACK_KEYS = "Successfully subscribed to keys."
UNFUNDED = (
    "'subscribeTokenTrade' and 'subscribeAccountTrade' methods are only available when connecting with "
    "an API key funded with at least 0.02 SOL."
)


# Control texts are matched on their words (case, punctuation and spacing aside): a text one
# character off must neither hide a refusal nor pass for an acknowledgement.
def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


_ACKS = {_words(ACK_NEW_TOKENS): NEW_TOKENS, _words(ACK_MIGRATIONS): MIGRATIONS, _words(ACK_KEYS): None}
# Texts known to be harmless (the answer to an unsubscribe): reported as provider messages.
_KNOWN_TEXTS = frozenset({_words("Unsubscribed from keys.")})
# A control text that speaks of the paywall (the trade methods, funding, the key, the price) and
# refuses (only available, requires, at least...) is a refusal of the trade channels, whatever its
# exact words: a reworded or mistyped one must not pass for something else. Both are needed, so
# that an unrelated message ("slow down, you need to...") does not reject the trade channels.
_PAYWALL = re.compile(r"subscribetokentrade|subscribeaccounttrade|tokentrade|accounttrade|fund|api ?key|\d+ \d+ sol")
_REFUSING = re.compile(
    r"only available|not available|insufficient|not allowed|unauthori[sz]ed|denied|forbidden|requir|need|"
    r"must|at least|unfunded|not funded|only with|only for"
)


def _is_refusal(words: str) -> bool:
    return bool(_PAYWALL.search(words) and _REFUSING.search(words))


# Rejection codes for the trade channels.
NO_API_KEY = "no_api_key"
UNFUNDED_KEY = "unfunded_key"
# Notice codes.
TRADES_SILENT = "trade_channel_silent"
PROVIDER_MESSAGE = "provider_message"
UNRECOGNISED = "unrecognised_message"  # a control text that is neither a known ack nor a refusal

# A create whose "mint" is one of these is a mislabelled frame, never a launch.
WSOL_MINT = "So11111111111111111111111111111111111111112"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
QUOTE_MINTS = frozenset({WSOL_MINT, USDC_MINT})
PUMP_POOL = "pump"
# Bounded reasons for Dropped outputs (metric labels).
OTHER_POOL = "other_pool"
# A trade's ``pool`` as the event's ``venue``: pump.fun's curve, or its PumpSwap pool after graduation
# (frames from before the field existed were all curve trades); other launchpads' pools: not told.
_VENUES = {"pump": "curve", "pump-amm": "pumpswap"}
UNSUBSCRIBED = "unsubscribed"

# A trade channel acknowledged this long ago, with nothing delivered while at least
# SILENT_MIN_LAUNCHES launches arrived, is reported (the paywall seen from outside).
SILENT_TRADES_AFTER = 120.0
SILENT_MIN_LAUNCHES = 5
_MAX_TEXT = 300  # provider texts are logged: bound them

_BANNED = ClosePolicy(
    "refused by PumpPortal, probably a ban (the operator bans clients with more than one connection for an hour)",
    rate_limited=True,
)


# ---------------------------------------------------------------- field readers: typed and bounded

_TRADE_AMOUNTS = ("solAmount", "tokenAmount", "marketCapSol")
_INF = float("inf")
# A trade's event positionally: the fields up to price_sol, then these defaults around market_cap_sol and venue
# (computed from the class: right whatever fields are added).
_AFTER_PRICE = event_defaults_after("price_sol")
_MARKET_CAP_AT = Event._fields.index("market_cap_sol") - Event._fields.index("price_sol") - 1
_VENUE_AT = Event._fields.index("venue") - Event._fields.index("price_sol") - 1
_UP_TO_MARKET_CAP = _AFTER_PRICE[:_MARKET_CAP_AT]
_UP_TO_VENUE = _AFTER_PRICE[_MARKET_CAP_AT + 1 : _VENUE_AT]
_AFTER_VENUE = _AFTER_PRICE[_VENUE_AT + 1 :]
_new_tuple = tuple.__new__
_CREATE_AMOUNTS = ("initialBuy", "solAmount", "vSolInBondingCurve", "vTokensInBondingCurve", "marketCapSol")
_BASE58_KEY = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")  # a key the user asks for (checked loosely)
_MAX_SIGNATURE = 128  # a real one has 64 to 88 characters


def _address(value: Any) -> str | None:
    """A Solana address (base58, 32 bytes), else None."""
    return value if type(value) is str and is_address(value) else None


def _signature(value: Any) -> str | None:
    """A transaction signature: a non-empty string of bounded length, else None."""
    return value if type(value) is str and 0 < len(value) <= _MAX_SIGNATURE else None


def _amounts(obj: dict[str, Any], names: tuple[str, ...]) -> list[float | None] | None:
    """The amounts ``names`` (None where absent or null), or None if one is there and is not a
    finite number >= 0 (a negative amount, a 400-digit integer, a string): the frame is invalid."""
    out: list[float | None] = []
    for name in names:
        value = obj.get(name)
        amount = opt_amount(value)
        if amount is None and value is not None:
            return None
        out.append(amount)
    return out


# ---------------------------------------------------------------- filters and the registry's view (no socket needed)


def check_filters(channel: str, filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filters of ``channel`` in canonical form, or ``ConfigurationError`` naming the problem."""
    filters = dict(filters or {})
    allowed = {TOKEN_TRADES: {"keys"}, ACCOUNT_TRADES: {"keys"}, NEW_TOKENS: {"pools"}, MIGRATIONS: set()}[channel]
    unknown = sorted(set(filters) - allowed)
    if unknown:
        takes = f"takes only {', '.join(sorted(allowed))}" if allowed else "takes no filters"
        raise ConfigurationError("channels", f"pumpportal channel {channel!r} {takes} (not {', '.join(unknown)})")
    if channel in TRADE_CHANNELS:
        what = "mints" if channel == TOKEN_TRADES else "wallets"
        keys = _strings(channel, "keys", filters.get("keys", []))
        if not keys:
            raise ConfigurationError(
                "channels", f"pumpportal channel {channel!r} needs a non-empty 'keys' list ({what})"
            )
        bad = [k for k in keys if not _BASE58_KEY.fullmatch(k)]
        if bad:
            raise ConfigurationError("channels", f"{channel!r}: {bad[0][:50]!r} is not a base58 address")
        return {"keys": keys}
    if "pools" in filters:
        return {"pools": _strings(channel, "pools", filters["pools"])}
    return {}


def _strings(channel: str, name: str, value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(type(v) is str and v for v in value):
        raise ConfigurationError("channels", f"{channel!r} filter {name!r} must be a list of strings")
    return list(dict.fromkeys(value))  # without repeats, in the user's order


def merge(old: Subscription | None, new: Subscription) -> Subscription:
    """What the registry holds after ``subscribe(new)``: trade channels add keys, others are replaced."""
    filters = check_filters(new.channel, new.filters)
    if old is not None and new.channel in TRADE_CHANNELS:
        filters = {"keys": list(dict.fromkeys([*old.filters.get("keys", ()), *filters["keys"]]))}
    return Subscription(new.channel, filters)


def remove(old: Subscription, filters: Mapping[str, Any] | None) -> Subscription | None:
    """What remains of ``old`` after ``unsubscribe(channel, filters)``; None: the whole channel goes."""
    if not filters:
        return None
    if old.channel not in TRADE_CHANNELS:
        raise ConfigurationError("filters", f"pumpportal channel {old.channel!r} can only be unsubscribed as a whole")
    gone = set(check_filters(old.channel, filters)["keys"])
    keys = [k for k in old.filters.get("keys", ()) if k not in gone]
    return Subscription(old.channel, {"keys": keys}) if keys else None


def check_config(config: ClientConfig) -> None:
    """Configuration-time checks (``ProviderSpec.check``): every channel's filters, the silence option."""
    for sub in config.channels:
        check_filters(sub.channel, sub.filters)
    silent = getattr(config, "silent_trades_after", None)
    if silent is not None and (isinstance(silent, bool) or not isinstance(silent, (int, float)) or not silent > 0):
        raise ConfigurationError("silent_trades_after", f"{silent!r} is not a positive number of seconds")


def _chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + MAX_KEYS_PER_MESSAGE] for i in range(0, len(keys), MAX_KEYS_PER_MESSAGE)]


def _message(method: str, keys: list[str] | None = None) -> str:
    return json.dumps({"method": method} if keys is None else {"method": method, "keys": keys})


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
        self.silent_after_ms = int((silent_trades_after or SILENT_TRADES_AFTER) * 1000)
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

    def on_open(self) -> list[str]:
        frames: list[tuple[str, str | None]] = []
        for sub in self.subscriptions.values():
            frames += self._frames(None, sub)
        return self._release(frames)

    # -- subscriptions
    def subscribe(self, sub: Subscription) -> list[str]:
        """Set ``sub.channel`` to ``sub``; only the difference from what was asked before is sent."""
        sub = Subscription(sub.channel, check_filters(sub.channel, sub.filters))
        old = self.subscriptions.get(sub.channel)
        self.subscriptions[sub.channel] = sub
        self._keysets = self._keysets_of()
        if sub.channel == NEW_TOKENS:
            self._pools = self._pools_of(sub)
        return self._release(self._frames(old, sub))

    def unsubscribe(self, channel: str) -> list[str]:
        old = self.subscriptions.pop(channel, None)
        self._watch.pop(channel, None)
        self._acked.discard(channel)
        self._keysets = self._keysets_of()
        if old is None:
            return []
        method = METHODS[channel][1]
        if method is None:  # migrations: the API has no unsubscribe; they are dropped here instead
            return []
        if channel in TRADE_CHANNELS:
            return self._release([(_message(method, chunk), None) for chunk in _chunks(old.filters["keys"])])
        return self._release([(_message(method), None)])

    def _frames(self, old: Subscription | None, new: Subscription) -> list[tuple[str, str | None]]:
        subscribe, unsubscribe = METHODS[new.channel]
        if new.channel not in TRADE_CHANNELS:
            return [] if old is not None else [(_message(subscribe), None)]
        before = old.filters["keys"] if old is not None else []
        after = new.filters["keys"]
        kept = set(before)
        added = [k for k in after if k not in kept]
        wanted = set(after)
        removed = [k for k in before if k not in wanted]
        frames: list[tuple[str, str | None]] = []
        if removed and unsubscribe is not None:
            frames += [(_message(unsubscribe, chunk), None) for chunk in _chunks(removed)]
        frames += [(_message(subscribe, chunk), new.channel) for chunk in _chunks(added)]
        return frames

    def _release(self, frames: Iterable[tuple[str, str | None]] = ()) -> list[str]:
        """Queue ``frames`` and return those the current window still allows (in order)."""
        self._queue.extend(frames)
        out: list[str] = []
        queue = self._queue
        while queue and self._window_sent < MESSAGES_PER_WINDOW:
            text, channel = queue.popleft()
            self._window_sent += 1
            if channel is not None:
                self._awaiting_keys_ack.append(channel)
            out.append(text)
        return out

    @staticmethod
    def _pools_of(sub: Subscription | None) -> frozenset[str]:
        pools = sub.filters.get("pools") if sub is not None else None
        return frozenset(pools) if pools else frozenset({PUMP_POOL})

    # -- frames
    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        out: list[Output] = []
        start = self._window_start
        if start is None:
            self._window_start = received_at  # the first window began at the opening; it ends a second from now
        elif received_at - start >= WINDOW_MS:
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
        mint, signature = _address(get("mint")), _signature(get("signature"))
        trader = _address(get("traderPublicKey"))
        sol, tokens, market_cap = get("solAmount"), get("tokenAmount"), get("marketCapSol")
        # _amounts' common case inline (three finite floats >= 0: the bulk path); anything else goes through it
        if not (
            type(sol) is float
            and type(tokens) is float
            and type(market_cap) is float
            and 0.0 <= sol < _INF
            and 0.0 <= tokens < _INF
            and 0.0 <= market_cap < _INF
        ):
            amounts = _amounts(obj, _TRADE_AMOUNTS)
            if amounts is None:
                return self.unknown(obj, received_at, "invalid_fields")
            sol, tokens, market_cap = amounts
        if mint is None or signature is None:
            return self.unknown(obj, received_at, "invalid_fields")
        channel = self._trade_channel(mint, trader)
        if channel is None:
            return [Dropped(UNSUBSCRIBED)]
        if self._watch:
            self._watch.pop(channel, None)  # it delivers: not the paywall
        pool = get("pool", PUMP_POOL)
        price = sol / tokens if sol is not None and tokens else None  # ratio(), inline
        # positional (a third of keywords' cost), no slot and no timestamp: PumpPortal's frames carry neither
        head = (TRADE, PROVIDER, mint, signature, None, None, received_at, self.connection, False, obj, channel, side,
                sol, tokens, trader, price if price is None or price - price == 0.0 else None)  # fmt: skip
        venue = _VENUES.get(pool) if type(pool) is str else None
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
        mint, signature = _address(obj.get("mint")), _signature(obj.get("signature"))
        if mint in QUOTE_MINTS:
            return [Malformed("invalid_fields")]  # a mislabelled frame: never delivered as a launch
        amounts = _amounts(obj, _CREATE_AMOUNTS)
        if mint is None or signature is None or amounts is None:
            return self.unknown(obj, received_at, "invalid_fields")
        initial_tokens, initial_sol, v_sol, v_tokens, market_cap = amounts
        out: list[Output] = self._launch_seen(received_at) if self._watch else []
        if NEW_TOKENS not in self.subscriptions:
            out.append(Dropped(UNSUBSCRIBED))
            return out
        # Frames from before the field existed were all pump.fun's; a non-string pool is no known pool.
        pool = opt_str(obj.get("pool", PUMP_POOL))
        if pool not in self._pools:
            out.append(Dropped(OTHER_POOL))
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
                creator=_address(obj.get("traderPublicKey")),
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
        mint, signature = _address(obj.get("mint")), _signature(obj.get("signature"))
        if mint is None or signature is None:
            return self.unknown(obj, received_at, "invalid_fields")
        if MIGRATIONS not in self.subscriptions:
            return [Dropped(UNSUBSCRIBED)]
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
        words = _words(text[:_MAX_TEXT])
        if words in _ACKS:
            channel = _ACKS[words]
            if channel is not None:
                return self._acknowledged(channel, received_at)
            if not self._awaiting_keys_ack:
                return []  # an ack of a message from before a rejection, or one we did not count
            return self._acknowledged(self._awaiting_keys_ack.popleft(), received_at)
        if words in _KNOWN_TEXTS:
            return [Notice(PROVIDER_MESSAGE, self._bounded(text))]
        if _is_refusal(words):
            self._unfunded = UNFUNDED_KEY if self._key else NO_API_KEY
            self._awaiting_keys_ack.clear()
            return self._rejections([ch for ch in TRADE_CHANNELS if ch in self.subscriptions], text)
        # Neither a known ack nor a refusal: counted and logged as a notice, and taken for no
        # acknowledgement (a trade channel awaiting one stays unacknowledged: its silence is watched).
        return [Notice(UNRECOGNISED, self._bounded(text))]

    def _acknowledged(self, channel: str, received_at: int) -> list[Output]:
        if channel not in self.subscriptions or channel in self._acked:
            return []  # one Subscribed per channel and session (a long key list is acknowledged per chunk)
        if channel in TRADE_CHANNELS and self._unfunded is not None:
            return self._rejections([channel], UNFUNDED)
        self._acked.add(channel)
        if channel in TRADE_CHANNELS:
            self._watch[channel] = [received_at, 0]
        return [Subscribed(channel)]

    def _rejections(self, channels: list[str], text: str) -> list[Output]:
        """``channels`` refused; when that leaves nothing subscribed, the stream ends with the
        refusal (a PlanError) instead of idling on a socket that will never deliver."""
        out: list[Output] = [self._reject(channel, text) for channel in channels]
        if out and not self.subscriptions:
            code = self._unfunded or UNFUNDED_KEY
            refused = ", ".join(channels)
            out.append(
                Fatal(
                    PlanError(
                        f"PumpPortal refused every subscribed channel ({refused}): "
                        + (
                            "trade channels need an API key funded with at least 0.02 SOL"
                            if code == NO_API_KEY
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
        code = self._unfunded or UNFUNDED_KEY
        why = (
            "no API key was given; trade channels need one funded with at least 0.02 SOL"
            if code == NO_API_KEY
            else "the API key's wallet is not funded (PumpPortal wants at least 0.02 SOL for trade channels)"
        )
        return Rejected(SubscriptionRejected(channel, code, f"{why}: {self._bounded(text)}", provider=PROVIDER))

    def _launch_seen(self, received_at: int) -> list[Output]:
        """A launch arrived: report trade channels acknowledged long ago that never delivered."""
        out: list[Output] = []
        for channel, watch in list(self._watch.items()):
            watch[1] += 1
            silent_ms = received_at - watch[0]
            if silent_ms >= self.silent_after_ms and watch[1] >= SILENT_MIN_LAUNCHES:
                del self._watch[channel]  # once per channel and session
                out.append(
                    Notice(
                        TRADES_SILENT,
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
        return redact(text[:_MAX_TEXT], self._key)


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
    options={"silent_trades_after": SILENT_TRADES_AFTER},
    check=check_config,
    filter_reasons=(OTHER_POOL, UNSUBSCRIBED),
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
