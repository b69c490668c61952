"""PumpPortal data API server (free-sources.md section 2): ``/api/data``, key optional (``?api-key=``).

What it models, from the operator's description and the published captures:

- ``subscribeNewToken`` / ``subscribeMigration`` answered with the captured acknowledgement texts;
  ``subscribeTokenTrade`` / ``subscribeAccountTrade`` (``keys``) with ``Successfully subscribed to keys.``.
  A connection without a funded key (see ``plans.py``) also gets the captured unfunded-key message,
  once, and then no trades at all. Unsubscribes are not acknowledged (no text is documented).
- Subscriptions belong to a connection: a reconnect starts with none.
- One connection per client (by address): a second concurrent upgrade bans the address for
  ``ban_seconds``; every upgrade during a ban is answered HTTP 429 with ``Retry-After``.
- More than 5,000 keys in a message, more than 200 subscription messages in a second, or a message
  that is not ``{"method": ...}`` get an ``{"errors": ...}`` frame and are ignored.
- Frames carry no timestamp, slot or sequence number; integer-valued amounts are written as JSON
  integers (``30``, not ``30.0``). Launches from another launchpad (``pool`` ``bonk``) and creates
  mislabelled with the USDC mint come on the same feed now and then.

This module writes frames; ``pumpsync/providers/pumpportal.py`` reads them. They share no code.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from pumpsync.simulator import _ids
from pumpsync.simulator.connection import Conn, Subscription
from pumpsync.simulator.faults import MalformedKind, _common_malformed, dumps, pad_to_size
from pumpsync.simulator.history import History
from pumpsync.simulator.market import (
    LAMPORTS_PER_SOL,
    TOKEN_UNIT,
    Curve,
    Graduation,
    Launch,
    MarketEvent,
    Trade,
)
from pumpsync.simulator.plans import KeyTable, PumpPortalPlan
from pumpsync.simulator.server import STREAM_PATH, ProviderServer, _is_upgrade

PATH = "/api/data"
ACK_NEW_TOKENS = "Successfully subscribed to token creation events."
ACK_MIGRATIONS = "Subscribed to 'migration' events."
ACK_KEYS = "Successfully subscribed to keys."
UNFUNDED_MESSAGE = (
    "'subscribeTokenTrade' and 'subscribeAccountTrade' methods are only available when connecting with "
    "an API key funded with at least 0.02 SOL."
)
MAX_KEYS = 5_000
MAX_MESSAGES_PER_SECOND = 200
BAN_SECONDS = 3600.0  # "clients that open many connections get banned for an hour"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
BONK_SHARE = 0.1  # extra launches from another launchpad, per pump.fun launch
MISLABELLED_SHARE = 0.02  # extra creates carrying the USDC mint, per pump.fun launch
_METHODS = (
    "subscribeNewToken",
    "unsubscribeNewToken",
    "subscribeMigration",
    "subscribeTokenTrade",
    "unsubscribeTokenTrade",
    "subscribeAccountTrade",
    "unsubscribeAccountTrade",
)
_BALANCES_CAP = 100_000  # trader balances remembered for newTokenBalance (a bounded ledger)


def _num(value: float) -> float | int:
    """An amount as PumpPortal writes it: integer-valued numbers without a fraction."""
    return int(value) if value.is_integer() else value


def _curve_key(mint: str) -> str:
    return _ids.b58encode(hashlib.sha256(b"bonding-curve" + mint.encode()).digest())


def _curve_fields(mint: str, curve: Curve) -> dict[str, Any]:
    return {
        "bondingCurveKey": _curve_key(mint),
        "vTokensInBondingCurve": _num(curve.virtual_tokens / TOKEN_UNIT),
        "vSolInBondingCurve": _num(curve.virtual_sol / LAMPORTS_PER_SOL),
        "marketCapSol": _num(curve.market_cap_sol),
    }


def create_frame(launch: Launch, initial: Trade | None) -> dict[str, Any]:
    """A pump.fun launch; ``initial`` is the creator's first buy in the same transaction, if any."""
    token = launch.token
    return {
        "signature": launch.signature,
        "mint": launch.mint,
        "traderPublicKey": token.creator,
        "txType": "create",
        "initialBuy": _num(initial.token_raw / TOKEN_UNIT) if initial else 0,
        "solAmount": _num(initial.sol_lamports / LAMPORTS_PER_SOL) if initial else 0,
        **_curve_fields(launch.mint, launch.curve),
        "name": token.name,
        "symbol": token.symbol,
        "uri": token.uri,
        "is_mayhem_mode": token.mayhem_mode,
        "pool": "pump",
    }


def trade_frame(trade: Trade, balance_raw: int) -> dict[str, Any]:
    return {
        "signature": trade.signature,
        "mint": trade.mint,
        "traderPublicKey": trade.trader,
        "txType": trade.side,
        "tokenAmount": _num(trade.token_raw / TOKEN_UNIT),
        "solAmount": _num(trade.sol_lamports / LAMPORTS_PER_SOL),
        "newTokenBalance": _num(balance_raw / TOKEN_UNIT),
        **_curve_fields(trade.mint, trade.curve),
        "pool": "pump-amm" if trade.venue == "pumpswap" else "pump",  # after graduation: its PumpSwap pool
    }


def migrate_frame(graduation: Graduation) -> dict[str, Any]:
    return {"signature": graduation.signature, "mint": graduation.mint, "txType": "migrate", "pool": "pump-amm"}


def bonk_frame(rng: random.Random, name: str, symbol: str) -> dict[str, Any]:
    """A launch from another launchpad, in the captured ``bonk`` shape (no bonding-curve fields)."""
    sol = round(rng.uniform(0.05, 3.0), 5)
    bought = 1.073e9 * sol / (30.0 + sol)
    return {
        "signature": _ids.signature(rng),
        "traderPublicKey": _ids.wallet(rng),
        "txType": "create",
        "mint": _ids.wallet(rng),
        "solInPool": sol,
        "tokensInPool": 1e9 - bought,
        "initialBuy": bought,
        "solAmount": sol,
        "newTokenBalance": bought,
        "marketCapSol": (30.0 + sol) / (1.073e9 - bought) * 1e9,
        "name": name,
        "symbol": symbol,
        "uri": f"https://ipfs.io/ipfs/{_ids.ipfs_cid(rng)}",
        "pool": "bonk",
    }


def _wants_trade(trade: Trade) -> Callable[[_State], bool]:
    return lambda state: state.wants(trade)


@dataclass
class _State:
    """One connection's subscriptions: nothing survives the connection."""

    plan: PumpPortalPlan
    new_tokens: bool = False
    migrations: bool = False
    mints: set[str] = field(default_factory=set)
    wallets: set[str] = field(default_factory=set)
    told_unfunded: bool = False
    recent: deque[float] = field(default_factory=deque)  # monotonic times of the last subscription messages

    def wants(self, trade: Trade) -> bool:
        return self.plan.funded and (trade.mint in self.mints or trade.trader in self.wallets)


class PumpPortalServer(ProviderServer):
    name = "pumpportal"
    key_param = "api-key"
    # /v1/stream too, so that the simulator's generic URL reaches it.
    stream_paths: ClassVar[tuple[str, ...]] = (PATH, STREAM_PATH)

    def __init__(
        self,
        host: str,
        port: int,
        keys: KeyTable,
        seed: int = 1,
        ban_seconds: float = BAN_SECONDS,
        bonk_share: float = BONK_SHARE,
        mislabelled_share: float = MISLABELLED_SHARE,
        history_limit: int | None = None,
    ) -> None:
        super().__init__(host, port, keys)
        if ban_seconds < 0 or not 0 <= bonk_share <= 1 or not 0 <= mislabelled_share <= 1:
            raise ValueError("ban_seconds must be >= 0 and the shares between 0 and 1")
        self.ban_seconds = ban_seconds
        self.bonk_share = bonk_share
        self.mislabelled_share = mislabelled_share
        self.bans: dict[str, float] = {}  # client address -> monotonic end of its ban
        self.history: History[tuple[str, str]] = History(history_limit)  # (txType or pool, JSON text)
        self._rng = random.Random(seed + 2_000_003)  # its own stream: the market's draws stay the same
        self._states: dict[int, _State] = {}
        self._balances: dict[tuple[str, str], int] = {}

    # -- admission: one connection per client ----------------------------------------------

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if _is_upgrade(request) and urlsplit(request.path).path.rstrip("/") in self.stream_paths:
            host = str(ws.remote_address[0]) if ws.remote_address else ""
            now = time.monotonic()
            if self.bans.get(host, 0.0) <= now and self._connected(host):
                self.bans[host] = now + self.ban_seconds  # a second concurrent connection: the ban
            until = self.bans.get(host, 0.0)
            if until > now:
                response = ws.respond(429, "Banned: use one WebSocket connection for every subscription\n")
                # Rounded first: (now + 600) - now can be 600.0000000001, which ceil() makes 601.
                response.headers["Retry-After"] = str(math.ceil(round(until - now, 3)))
                return response
        return await super()._process_request(ws, request)

    def _connected(self, host: str) -> bool:
        # A stalled connection stands for a dead network path: its client may well be gone.
        return any(c.remote[0] == host and c.is_open and not c.stalled for c in self.conns.values())

    def lift_bans(self) -> None:
        self.bans.clear()

    async def admit(self, ws: ServerConnection, key: str | None) -> Conn | None:
        plan = self.keys.pumpportal(key)
        conn = self.register(ws, key or "", plan.name)
        self._states[conn.index] = _State(plan)
        conn.ready = True
        return conn

    def on_closed(self, conn: Conn) -> None:
        self._states.pop(conn.index, None)

    # -- client messages -------------------------------------------------------------------

    async def on_message(self, conn: Conn, message: str | bytes) -> None:
        state = self._states.get(conn.index)
        if state is None:
            return
        try:
            msg = json.loads(message)
        except ValueError:
            msg = None
        method = msg.get("method") if isinstance(msg, dict) else None
        if method not in _METHODS:
            conn.send(dumps({"errors": 'Invalid message: send {"method": "subscribeNewToken"} and the like'}))
            return
        assert isinstance(msg, dict)
        now = time.monotonic()
        recent = state.recent
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        if len(recent) >= MAX_MESSAGES_PER_SECOND:
            conn.send(dumps({"errors": f"Rate limit exceeded: at most {MAX_MESSAGES_PER_SECOND} messages per second"}))
            return
        recent.append(now)
        if method == "subscribeNewToken":
            state.new_tokens = True
            conn.send(dumps({"message": ACK_NEW_TOKENS}))
        elif method == "unsubscribeNewToken":
            state.new_tokens = False
        elif method == "subscribeMigration":
            state.migrations = True
            conn.send(dumps({"message": ACK_MIGRATIONS}))
        else:
            self._keys_message(conn, state, method, msg.get("keys"))
        self._sync(conn, state)

    def _keys_message(self, conn: Conn, state: _State, method: str, keys: Any) -> None:
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            conn.send(dumps({"errors": "keys must be a non-empty array of addresses"}))
            return
        if len(keys) > MAX_KEYS:
            conn.send(dumps({"errors": f"Too many keys: at most {MAX_KEYS} per message"}))
            return
        target = state.mints if method.endswith("TokenTrade") else state.wallets
        if method.startswith("unsubscribe"):
            target.difference_update(keys)
            return
        target.update(keys)
        conn.send(dumps({"message": ACK_KEYS}))
        if not state.plan.funded and not state.told_unfunded:
            state.told_unfunded = True  # said once; then the subscription simply stays silent
            conn.send(dumps({"message": UNFUNDED_MESSAGE}))

    @staticmethod
    def _sync(conn: Conn, state: _State) -> None:
        """The connection's snapshot: what it is subscribed to, in the client's channel names."""
        subs: dict[str, Subscription] = {}
        if state.new_tokens:
            subs["new_tokens"] = Subscription("new_tokens", {}, {})
        if state.migrations:
            subs["migrations"] = Subscription("migrations", {}, {})
        for channel, keys in (("token_trades", state.mints), ("account_trades", state.wallets)):
            if keys:
                filters = {"keys": sorted(keys)}
                subs[channel] = Subscription(channel, filters, filters)
        conn.subs = subs

    # -- market feed -----------------------------------------------------------------------

    def _send(self, kind: str, frame: dict[str, Any], wants: Callable[[_State], bool]) -> None:
        text = dumps(frame)
        self.history.append((kind, text))
        for conn in list(self.conns.values()):
            state = self._states.get(conn.index)
            if state is not None and wants(state):
                conn.send(text)

    def publish(self, events: list[MarketEvent]) -> None:
        for i, event in enumerate(events):
            if isinstance(event, Launch):
                following = events[i + 1] if i + 1 < len(events) else None
                initial = following if isinstance(following, Trade) and following.signature == event.signature else None
                self._launch(event, initial)
            elif isinstance(event, Trade):
                key = (event.mint, event.trader)
                change = event.token_raw if event.side == "buy" else -event.token_raw
                if len(self._balances) >= _BALANCES_CAP:
                    self._balances.clear()
                balance = self._balances[key] = max(0, self._balances.get(key, 0) + change)
                self._send(event.side, trade_frame(event, balance), _wants_trade(event))
            else:
                self._send("migrate", migrate_frame(event), lambda s: s.migrations)

    def _launch(self, launch: Launch, initial: Trade | None) -> None:
        self._send("create", create_frame(launch, initial), lambda s: s.new_tokens)
        rng = self._rng
        if rng.random() < self.bonk_share:
            name = f"{launch.token.name} Bonk"
            self._send("bonk", bonk_frame(rng, name, launch.token.symbol[:4] + "B"), lambda s: s.new_tokens)
        if rng.random() < self.mislabelled_share:
            frame = {**create_frame(launch, initial), "signature": _ids.signature(rng), "mint": USDC}
            self._send("mislabelled", frame, lambda s: s.new_tokens)

    def blast_texts(self, conn: Conn, trade: Trade) -> list[str]:
        """Trades for a funded trade subscription; otherwise launches for a new_tokens subscription."""
        state = self._states.get(conn.index)
        if state is None:
            return []
        if state.plan.funded and (state.mints or state.wallets):
            return [dumps(trade_frame(trade, trade.token_raw))]
        if state.new_tokens:
            return [dumps(_blast_create(trade))]
        return []

    def malformed_frame(self, conn: Conn, kind: MalformedKind, size: int) -> str | bytes:
        frame = _malformed_create()
        if kind == "missing_fields":
            del frame["mint"], frame["signature"]
            return dumps(frame)
        if kind == "binary":
            return dumps(frame).encode()
        if kind == "oversized":
            return pad_to_size(frame, ("uri",), size)
        return _common_malformed(kind, {"txType": "sim_unknown_event", "mint": frame["mint"]})


_malformed_rng = random.Random()


def _malformed_create() -> dict[str, Any]:
    """A launch no market event has (identifiers of its own), for malformed frames."""
    rng = _malformed_rng
    return {
        "signature": _ids.signature(rng),
        "mint": _ids.pump_mint(rng),
        "traderPublicKey": _ids.wallet(rng),
        "txType": "create",
        "initialBuy": 0,
        "solAmount": 0,
        **_curve_fields("malformed", Curve()),
        "name": "Malformed Token",
        "symbol": "MALF",
        "uri": f"https://ipfs.io/ipfs/{_ids.ipfs_cid(rng)}",
        "is_mayhem_mode": False,
        "pool": "pump",
    }


def _blast_create(trade: Trade) -> dict[str, Any]:
    """A launch-shaped frame around a trade (benchmarks of the free feed; malformed frames)."""
    return {
        "signature": trade.signature,
        "mint": trade.mint,
        "traderPublicKey": trade.trader,
        "txType": "create",
        "initialBuy": _num(trade.token_raw / TOKEN_UNIT),
        "solAmount": _num(trade.sol_lamports / LAMPORTS_PER_SOL),
        **_curve_fields(trade.mint, trade.curve),
        "name": "Blast Token",
        "symbol": "BLAST",
        "uri": "https://ipfs.io/ipfs/QmBLASTBLASTBLASTBLASTBLASTBLASTBLASTBLASTBLAST",
        "is_mayhem_mode": False,
        "pool": "pump",
    }
