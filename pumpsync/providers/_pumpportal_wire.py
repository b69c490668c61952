"""PumpPortal's data API as it is on the wire, apart from the dialect that speaks it: channel names and
their methods, the operator's limits, the control texts and how they are told apart, the typed and
bounded field readers, and the subscription filters as the registry sees them (no socket needed)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pumpsync._bounds import is_address
from pumpsync.errors import ConfigurationError
from pumpsync.providers.base import Subscription, opt_amount

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
def text_words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


ACKS = {text_words(ACK_NEW_TOKENS): NEW_TOKENS, text_words(ACK_MIGRATIONS): MIGRATIONS, text_words(ACK_KEYS): None}
# Texts known to be harmless (the answer to an unsubscribe): reported as provider messages.
KNOWN_TEXTS = frozenset({text_words("Unsubscribed from keys.")})
# A control text that speaks of the paywall (the trade methods, funding, the key, the price) and
# refuses (only available, requires, at least...) is a refusal of the trade channels, whatever its
# exact words: a reworded or mistyped one must not pass for something else. Both are needed, so
# that an unrelated message ("slow down, you need to...") does not reject the trade channels.
_PAYWALL = re.compile(r"subscribetokentrade|subscribeaccounttrade|tokentrade|accounttrade|fund|api ?key|\d+ \d+ sol")
_REFUSING = re.compile(
    r"only available|not available|insufficient|not allowed|unauthori[sz]ed|denied|forbidden|requir|need|"
    r"must|at least|unfunded|not funded|only with|only for"
)


def is_refusal(words: str) -> bool:
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
VENUES = {"pump": "curve", "pump-amm": "pumpswap"}
UNSUBSCRIBED = "unsubscribed"

# A trade channel acknowledged this long ago, with nothing delivered while at least
# SILENT_MIN_LAUNCHES launches arrived, is reported (the paywall seen from outside).
SILENT_TRADES_AFTER = 120.0
SILENT_MIN_LAUNCHES = 5
MAX_TEXT = 300  # provider texts are logged: bound them

# ---------------------------------------------------------------- field readers: typed and bounded

TRADE_AMOUNTS = ("solAmount", "tokenAmount", "marketCapSol")
CREATE_AMOUNTS = ("initialBuy", "solAmount", "vSolInBondingCurve", "vTokensInBondingCurve", "marketCapSol")
_BASE58_KEY = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")  # a key the user asks for (checked loosely)
_MAX_SIGNATURE = 128  # a real one has 64 to 88 characters


def read_address(value: Any) -> str | None:
    """A Solana address (base58, 32 bytes), else None."""
    return value if type(value) is str and is_address(value) else None


def read_signature(value: Any) -> str | None:
    """A transaction signature: a non-empty string of bounded length, else None."""
    return value if type(value) is str and 0 < len(value) <= _MAX_SIGNATURE else None


def read_amounts(obj: dict[str, Any], names: tuple[str, ...]) -> list[float | None] | None:
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


def key_chunks(keys: list[str]) -> list[list[str]]:
    return [keys[i : i + MAX_KEYS_PER_MESSAGE] for i in range(0, len(keys), MAX_KEYS_PER_MESSAGE)]


def method_message(method: str, keys: list[str] | None = None) -> str:
    return json.dumps({"method": method} if keys is None else {"method": method, "keys": keys})
