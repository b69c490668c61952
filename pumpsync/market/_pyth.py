"""SOL/USD from Pyth's on-chain price feed, read through the Solana RPC node you already use.

No extra key or service: one ``getAccountInfo`` (base64) of the SOL/USD price feed account, decoded as
the Pyth receiver program's ``PriceUpdateV2`` account. Layout (Anchor/Borsh), from
``pyth-network/pyth-crosschain`` ``target_chains/solana/pyth_solana_receiver_sdk/src/price_update.rs``
(commit 4f7d3c5324659f3a24be13212e07f7574c51f17d) and ``pythnet_sdk``'s ``PriceFeedMessage``:

    8   discriminator, sha256("account:PriceUpdateV2")[:8]
    32  write_authority
    1+  verification_level: Borsh enum, 0 = Partial{num_signatures: u8} (2 bytes), 1 = Full (1 byte)
    32  feed_id; i64 price; u64 conf; i32 exponent; i64 publish_time; i64 prev_publish_time;
        i64 ema_price; u64 ema_conf
    u64 posted_slot

The price is ``price * 10**exponent`` USD. The feed id (SOL/USD ``ef0d8b6f...b56d``, the SDK's own
example) is checked, so a wrong account gives no price, never a wrong one; so does a stale one.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

# The SOL/USD price feed account Pyth keeps updated on mainnet: the push oracle program's
# (pythWSnswVUd12oZpeFP8e9CVaEqJg25g1Vtc2biRsT, pyth_solana_receiver_sdk's PYTH_PUSH_ORACLE_ID) address
# derived from (shard 0 as u16 LE, feed id); tests/market/test_market_pyth.py derives it again. The
# account itself is written, so owned, by the receiver program (RECEIVER_PROGRAM, the SDK's declare_id).
SOL_USD_ACCOUNT = "7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE"
SOL_USD_FEED_ID = bytes.fromhex("ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d")
RECEIVER_PROGRAM = "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ"
DISCRIMINATOR = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]
_MESSAGE = struct.Struct("<32sqQiqqqQ")  # feed_id, price, conf, exponent, publish_time, prev, ema_price, ema_conf


@dataclass(frozen=True)
class PythPrice:
    price: float  # USD per SOL
    conf: float
    publish_time: int  # epoch seconds
    posted_slot: int
    full_verification: bool


def decode_price_update(data: bytes, feed_id: bytes = SOL_USD_FEED_ID) -> PythPrice:
    """A ``PriceUpdateV2`` account's price; ValueError for anything else (wrong type, feed, size, values)."""
    if data[:8] != DISCRIMINATOR:
        raise ValueError("not a Pyth PriceUpdateV2 account")
    offset = 8 + 32
    if len(data) <= offset:
        raise ValueError("truncated account")
    level = data[offset]
    if level not in (0, 1):
        raise ValueError(f"unknown verification level {level}")
    offset += 2 if level == 0 else 1
    if len(data) < offset + _MESSAGE.size + 8:
        raise ValueError("truncated account")
    fid, price, conf, exponent, publish_time, _prev, _ema, _ema_conf = _MESSAGE.unpack_from(data, offset)
    (posted_slot,) = struct.unpack_from("<Q", data, offset + _MESSAGE.size)
    if fid != feed_id:
        raise ValueError("another price feed")
    if price <= 0 or not -18 <= exponent <= 0:
        raise ValueError(f"implausible price {price}e{exponent}")
    scale = 10.0**exponent
    return PythPrice(price * scale, conf * scale, publish_time, posted_slot, level == 1)


class PythSolUsd:
    """A SOL/USD source for :class:`~pumpsync.Market`: ``Market(sol_usd=PythSolUsd(rpc_url))``.

    Called by readers; it asks the node at most every ``refresh_s`` seconds (one caller at a time; the
    others get the last price meanwhile), waits at most ``timeout`` seconds, and returns None when it
    has no price at most ``max_age_s`` seconds old. Failures are counted in ``errors`` and described in
    ``last_error`` (never with the URL, which may carry a key).
    """

    def __init__(
        self,
        rpc_url: str,
        account: str = SOL_USD_ACCOUNT,
        refresh_s: float = 10.0,
        max_age_s: float = 120.0,
        timeout: float = 5.0,
    ) -> None:
        self._url = rpc_url
        self._account = account
        self._refresh = refresh_s
        self._max_age = max_age_s
        self._timeout = timeout
        self._lock = threading.Lock()  # one fetch at a time; held only by the fetching caller
        self._last: PythPrice | None = None
        self._fetched = 0.0  # monotonic time of the last attempt
        self.errors = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"PythSolUsd(account={self._account!r})"  # no URL: it may carry a key

    @property
    def last(self) -> PythPrice | None:
        return self._last

    def __call__(self) -> float | None:
        if time.monotonic() - self._fetched >= self._refresh and self._lock.acquire(blocking=False):
            try:
                self._fetched = time.monotonic()
                self._fetch()
            finally:
                self._lock.release()
        last = self._last
        if last is None or time.time() - last.publish_time > self._max_age:
            return None
        return last.price

    def _fetch(self) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "getAccountInfo",
            "params": [self._account, {"encoding": "base64"}],
        }
        try:
            response = requests.post(self._url, json=body, timeout=self._timeout)
            response.raise_for_status()
            self._last = _price_of(response.json())
            self.last_error = None
        except (requests.RequestException, ValueError, KeyError, TypeError, IndexError) as exc:
            self.errors += 1
            self.last_error = _describe(exc)


def _price_of(reply: Any) -> PythPrice:
    if "error" in reply:
        raise ValueError(f"RPC error {reply['error'].get('code')}")
    value = reply["result"]["value"]
    if value is None:
        raise ValueError("no such account")
    if value.get("owner") != RECEIVER_PROGRAM:
        raise ValueError("the account is not the Pyth receiver's")
    data, encoding = value["data"]
    if encoding != "base64" or not isinstance(data, str) or len(data) > 4096:
        raise ValueError("unexpected account data")
    return decode_price_update(base64.b64decode(data, validate=True))


def _describe(exc: Exception) -> str:
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__  # its message names the URL
    return f"{type(exc).__name__}: {exc}"[:200]
