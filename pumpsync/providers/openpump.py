"""OpenPump's stream, as its document describes it.

- Auth: ``?api_key=`` or ``Authorization: Bearer``.
- Server frames: ``connected``, ``new_token``, ``token_enriched``, ``buy``/``sell``, ``pong``, ``status``.
- Client frames: ``{"type":"ping"}`` (every 30 s), ``{"type":"status"}``.
- No subscriptions: every event of the stream arrives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pumpsync._secrets import ApiKey
from pumpsync.events import NEW_TOKEN, TOKEN_ENRICHED, TRADE, Event
from pumpsync.providers.base import (
    AuthenticationError,
    ClosePolicy,
    Dialect,
    Handshake,
    Hello,
    Output,
    PlanError,
    Pong,
    StatusReport,
    event_defaults_after,
    opt_int,
    opt_num,
    opt_str,
)
from pumpsync.providers.spec import ProviderSpec

_PING = json.dumps({"type": "ping"})
_STATUS = json.dumps({"type": "status"})
_AFTER_TRADE = event_defaults_after("price_sol")
_INT_MAX = 2**63 - 1  # opt_int's bound  # a trade's event: fields up to price_sol, then these
_WHOLE_MAX = 2**53  # an int up to this is exactly a float (opt_num takes larger ones)
_new_tuple = tuple.__new__


def with_query(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value`` (replacing any previous one)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


class OpenPump(Dialect):
    provider = "openpump"
    default_url = "ws://api.openpump.io/v1/stream"
    close_policies: ClassVar[dict[int, ClosePolicy]] = {
        1000: ClosePolicy("normal closure"),
        1001: ClosePolicy("server going away (maintenance)"),
        1008: ClosePolicy("policy violation: invalid API key", refusal=AuthenticationError),
        1011: ClosePolicy("server error (temporary)"),
        4001: ClosePolicy("plan restriction: upgrade required", refusal=PlanError),
    }

    def handshake(self, url: str, key: ApiKey | None, auth: str) -> Handshake:
        if key is None:  # never: the key is required
            return Handshake(url, {})
        if auth == "header":
            return Handshake(url, {"Authorization": f"Bearer {key.reveal()}"})
        return Handshake(with_query(url, "api_key", key.reveal()), {})

    def ping(self) -> str:
        return _PING

    def status_request(self) -> str:
        return _STATUS

    def receive(self, payload: bytes | str, received_at: int) -> list[Output]:
        obj = self.parse(payload)
        if not isinstance(obj, dict):
            return [obj]
        kind = obj.get("type")
        if kind == "buy" or kind == "sell":
            return self._trade(obj, kind, received_at)
        if kind == "new_token" or kind == "token_enriched":
            return self._token(obj, kind, received_at)
        if kind == "pong":
            return [Pong()]
        if kind == "connected":
            status = obj.get("status")
            return [Hello(status if isinstance(status, dict) else obj)]  # obj: whose greeting it is shows
        if kind == "status":
            data = obj.get("data")
            if isinstance(data, dict):
                return [StatusReport(data)]
            return self.unknown(obj, received_at, "invalid_fields")
        return self.unknown(obj, received_at, "unknown_type")

    def _trade(self, obj: dict[str, Any], side: str, received_at: int) -> list[Output]:
        get = obj.get
        mint, signature = get("mint"), get("signature")
        if type(mint) is not str or type(signature) is not str:  # opt_str, inline: the bulk path
            return self.unknown(obj, received_at, "invalid_fields")
        sol, tokens = get("solAmount"), get("tokenAmount")
        # opt_num's common cases inline (a finite float; a whole token amount sent as an int); the rest goes through it
        sol = sol if type(sol) is float and sol - sol == 0.0 else opt_num(sol)
        if type(tokens) is int and -_WHOLE_MAX <= tokens <= _WHOLE_MAX:
            tokens = float(tokens)
        elif type(tokens) is not float or tokens - tokens != 0.0:
            tokens = opt_num(tokens)
        timestamp, trader = get("timestamp"), get("trader")
        price = sol / tokens if sol is not None and tokens else None  # ratio(), inline
        head = (
            TRADE,
            "openpump",
            mint,
            signature,
            None,  # slot
            timestamp if type(timestamp) is int and 0 <= timestamp <= _INT_MAX else opt_int(timestamp),
            received_at,
            self.connection,
            False,  # backfill
            obj,
            None,  # channel
            side,
            sol,  # sol_amount
            tokens,  # token_amount
            trader if type(trader) is str else None,
            price if price is None or price - price == 0.0 else None,  # 1e308 / 1e-308 overflows to inf
        )
        # positional, without _make's call and check (the test suite checks the length): a third of keywords' cost
        return [_new_tuple(Event, head + _AFTER_TRADE)]

    def _token(self, obj: dict[str, Any], kind: str, received_at: int) -> list[Output]:
        mint = opt_str(obj.get("mint"))
        if mint is None:
            return self.unknown(obj, received_at, "invalid_fields")
        curve = obj.get("bondingCurve")
        if not isinstance(curve, dict):
            curve = {}
        return [
            Event(
                NEW_TOKEN if kind == "new_token" else TOKEN_ENRICHED,
                "openpump",
                mint,
                opt_str(obj.get("signature")),
                None,
                opt_int(obj.get("timestamp")),
                received_at,
                self.connection,
                False,
                obj,
                creator=opt_str(obj.get("creator")),
                name=opt_str(obj.get("name")),
                symbol=opt_str(obj.get("symbol")),
                description=opt_str(obj.get("description")),
                image=opt_str(obj.get("image")),
                bonding_curve_progress=opt_num(curve.get("progress")),
                sol_raised=opt_num(curve.get("solRaised")),
                price_sol=opt_num(curve.get("currentPrice")),
                market_cap_sol=opt_num(curve.get("marketCap")),
            )
        ]


def _greeting(frame: Mapping[str, Any]) -> bool:
    """OpenPump's first frame: ``{"type": "connected", "status": {...}}`` (Anaxer's has ``"v": 1``)."""
    return frame.get("type") == "connected" and isinstance(frame.get("status"), dict) and "v" not in frame


SPEC = ProviderSpec(
    name="openpump",
    greeting=_greeting,
    summary="OpenPump: every launch and trade on one stream (no channels); status() requests",
    dialect=OpenPump,
    default_url=OpenPump.default_url,
    auth_forms=("query", "header"),
    default_auth="query",
    heartbeat="app",
    capabilities=frozenset({"status"}),
)
