"""Anaxer stream server: document form (document 003) and v1 form (the official SDK's).

In ``auto`` form the server announces v1 (``connected`` frame) and then answers each
client in the form its first subscribe uses. REST shares the port (see ``rest.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Literal

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from pumpsync.simulator import filters as flt
from pumpsync.simulator.connection import Conn, Form, Subscription
from pumpsync.simulator.faults import MalformedKind, RestFailure, anaxer_malformed, dumps
from pumpsync.simulator.history import History
from pumpsync.simulator.market import MarketEvent, Trade
from pumpsync.simulator.plans import AnaxerPlan, KeyTable
from pumpsync.simulator.records import CHANNEL_TYPES, AnaxerRecord, anaxer_records
from pumpsync.simulator.rest import RestApi
from pumpsync.simulator.server import ProviderServer, now_ms

FormMode = Literal["auto", "v1", "document"]
FORM_MODES: tuple[FormMode, ...] = ("auto", "v1", "document")
CHANNELS = tuple(CHANNEL_TYPES)
MAX_V1_SUBSCRIPTIONS = 50
TRADES_MINT_CAP = 100
FORBIDDEN_MESSAGE = "Your plan doesn't include this stream."


class AnaxerServer(ProviderServer):
    name = "anaxer"
    key_param = "key"

    def __init__(
        self,
        host: str,
        port: int,
        keys: KeyTable,
        form_mode: FormMode,
        ping_interval: float,
        pong_timeout: float,
        current_slot: Callable[[], int],
        history_limit: int | None = None,
    ) -> None:
        super().__init__(host, port, keys)
        if form_mode not in FORM_MODES:
            raise ValueError(f"anaxer_form must be one of {FORM_MODES}, not {form_mode!r}")
        self.form_mode = form_mode
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.history: History[tuple[AnaxerRecord, str]] = History(history_limit)  # (record, document JSON)
        self.rest_failures: list[RestFailure] = []
        self.rest = RestApi(self.keys, self.history, self.rest_failures, current_slot)
        self._plans: dict[int, AnaxerPlan] = {}

    # -- admission -------------------------------------------------------------------------

    async def admit(self, ws: ServerConnection, key: str | None) -> Conn | None:
        plan = self.keys.anaxer(key)
        if key is None or plan is None:
            if self.form_mode != "document":
                # v1 clients (the SDK) stop reconnecting only on this error code.
                await self._try_send(ws, self._v1_error("unauthorized", "Invalid or missing API key"))
            await ws.close(4001, "Invalid or missing API key")
            return None
        if plan.rate_limited:
            await ws.close(4002, "Rate limit exceeded")
            return None
        if self.key_connections(key) >= plan.max_connections:
            await ws.close(4003, "Plan limit on concurrent connections exceeded")
            return None
        conn = self.register(ws, key, plan.name)
        self._plans[conn.index] = plan
        if self.form_mode == "document":
            self._adopt(conn, "document")
        else:
            conn.form = "v1" if self.form_mode == "v1" else None
            limits = {
                "connectionsPerStream": plan.max_connections,
                "tradesRequiresMints": False,
                "tradesMintCap": TRADES_MINT_CAP,
            }
            conn.send(dumps({"v": 1, "type": "connected", "ts": now_ms(), "limits": limits}))
        conn.ready = True
        return conn

    @staticmethod
    async def _try_send(ws: ServerConnection, text: str) -> None:
        try:
            await ws.send(text)
        except Exception:
            pass

    def on_closed(self, conn: Conn) -> None:
        self._plans.pop(conn.index, None)

    def _adopt(self, conn: Conn, form: Form) -> bool:
        """Fix the connection's form on first use; False if it contradicts a pinned form."""
        if conn.form is None:
            conn.form = form
            if form == "document" and self.ping_interval > 0:
                conn.spawn(self._heartbeat(conn))
        return conn.form == form

    # -- frames ----------------------------------------------------------------------------

    @staticmethod
    def _v1_error(code: str, message: str, sub_id: str | None = None) -> str:
        frame: dict[str, Any] = {"v": 1, "type": "error", "code": code, "message": message}
        if sub_id is not None:
            frame["id"] = sub_id
        frame["ts"] = now_ms()
        return dumps(frame)

    @staticmethod
    def _doc_error(code: str, message: str, channel: str | None = None) -> str:
        frame: dict[str, Any] = {"type": "error", "code": code}
        if channel is not None:
            frame["channel"] = channel
        frame["message"] = message
        return dumps(frame)

    def _error(
        self, conn: Conn, code: str, message: str, sub_id: str | None = None, channel: str | None = None
    ) -> None:
        if conn.form == "document":
            conn.send(self._doc_error(code, message, channel))
        else:
            conn.send(self._v1_error(code, message, sub_id))

    # -- client messages -------------------------------------------------------------------

    async def on_message(self, conn: Conn, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            self._error(conn, "invalid_message", "Messages must be JSON objects")
            return
        mtype = msg.get("type")
        if mtype is None and "subscribe" in msg:
            self._doc_subscribe(conn, msg)
        elif mtype is None and "unsubscribe" in msg:
            self._doc_unsubscribe(conn, msg)
        elif mtype == "subscribe":
            self._v1_subscribe(conn, msg)
        elif mtype == "unsubscribe":
            self._v1_unsubscribe(conn, msg)
        elif mtype == "ping":
            self._on_ping(conn)
        elif mtype == "pong":
            conn.pongs_received += 1
            conn.pong_event.set()
        else:
            self._error(conn, "invalid_message", f"Unknown message type: {mtype!r}")

    def _on_ping(self, conn: Conn) -> None:
        conn.client_pings += 1
        if self.ignore_pings:
            return
        if conn.form == "document":
            conn.send(dumps({"type": "pong", "ts": now_ms()}))
        else:
            conn.send(dumps({"v": 1, "type": "pong", "ts": now_ms()}))

    def _check_channel(self, conn: Conn, channel: Any) -> str | None:
        """Error code for subscribing ``conn`` to ``channel``, or None if allowed."""
        if channel not in CHANNELS:
            return "unknown_channel"
        if channel not in self._plans[conn.index].channels:
            return "plan_restricted"
        return None

    def _doc_subscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        if not self._adopt(conn, "document"):
            self._error(conn, "invalid_message", 'Use {"type":"subscribe","id":...,"channel":...}')
            return
        channel = msg["subscribe"]
        name = channel if isinstance(channel, str) else None
        problem = self._check_channel(conn, channel)
        if problem == "unknown_channel":
            self._error(conn, problem, f"Unknown channel: {channel!r}", channel=name)
            return
        if problem == "plan_restricted":
            self._error(conn, "forbidden", FORBIDDEN_MESSAGE, channel=name)
            return
        raw = msg.get("filters")
        try:
            normalized = flt.validate(raw)
        except flt.FilterError as exc:
            self._error(conn, "invalid_filters", str(exc), channel=name)
            return
        conn.subs[f"doc:{channel}"] = Subscription(str(channel), normalized, dict(raw or {}))
        conn.send(dumps({"type": "subscribed", "channel": channel}))

    def _doc_unsubscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        if not self._adopt(conn, "document"):
            self._error(conn, "invalid_message", 'Use {"type":"unsubscribe","id":...}')
            return
        channel = msg["unsubscribe"]
        conn.subs.pop(f"doc:{channel}", None)
        conn.send(dumps({"type": "unsubscribed", "channel": channel}))

    def _v1_subscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        if not self._adopt(conn, "v1"):
            self._error(conn, "invalid_message", 'Use {"subscribe": "<channel>", "filters": {...}}')
            return
        sub_id, channel, raw = msg.get("id"), msg.get("channel"), msg.get("filters")
        if not isinstance(sub_id, str) or not sub_id:
            self._error(conn, "invalid_message", "subscribe needs a non-empty string id")
            return
        problem = self._check_channel(conn, channel)
        if problem is None and f"v1:{sub_id}" in conn.subs:
            problem = "duplicate_id"
        if problem is None and sum(s.form == "v1" for s in conn.subs.values()) >= MAX_V1_SUBSCRIPTIONS:
            problem = "subscription_limit"
        if problem is not None:
            self._error(conn, problem, _V1_MESSAGES[problem].format(channel=channel, id=sub_id), sub_id)
            return
        try:
            normalized = flt.validate(raw)
        except flt.FilterError as exc:
            self._error(conn, "invalid_filters", str(exc), sub_id)
            return
        raw_filters = dict(raw or {})
        conn.subs[f"v1:{sub_id}"] = Subscription(str(channel), normalized, raw_filters, sub_id, "v1")
        conn.send(
            dumps(
                {"v": 1, "type": "subscribed", "id": sub_id, "channel": channel, "filters": raw_filters, "ts": now_ms()}
            )
        )

    def _v1_unsubscribe(self, conn: Conn, msg: dict[str, Any]) -> None:
        if not self._adopt(conn, "v1"):
            self._error(conn, "invalid_message", 'Use {"unsubscribe": "<channel>"}')
            return
        sub_id = msg.get("id")
        if not isinstance(sub_id, str) or conn.subs.pop(f"v1:{sub_id}", None) is None:
            self._error(
                conn,
                "unknown_subscription",
                f"No subscription with id {sub_id!r}",
                sub_id if isinstance(sub_id, str) else None,
            )
            return
        conn.send(dumps({"v": 1, "type": "unsubscribed", "id": sub_id, "ts": now_ms()}))

    async def _heartbeat(self, conn: Conn) -> None:
        """Document form: ping every interval, close when the pong is late."""
        while conn.is_open:
            await asyncio.sleep(self.ping_interval)
            if conn.stalled:
                continue
            conn.pong_event.clear()
            if conn.send('{"type":"ping"}'):
                conn.pings_sent += 1
            try:
                await asyncio.wait_for(conn.pong_event.wait(), self.pong_timeout)
            except asyncio.TimeoutError:
                if not conn.stalled:
                    await conn.ws.close(1000, "pong timeout")
                    return

    def malformed_frame(self, conn: Conn, kind: MalformedKind, size: int) -> str | bytes:
        sub_id = next((s.id for s in conn.subs.values() if s.id is not None), None)
        form = conn.form or ("document" if self.form_mode == "document" else None)
        return anaxer_malformed(kind, form, sub_id, now_ms(), self.rest.current_slot(), size)

    # -- market feed ----------------------------------------------------------------------

    def _frames_for(self, conn: Conn, rec: AnaxerRecord, doc_text: str, payload_text: str) -> list[str]:
        frames = []
        for sub in conn.subs.values():
            if sub.channel != rec.channel or not flt.matches(sub.filters, rec.record):
                continue
            if sub.form == "document":
                frames.append(doc_text)
            else:
                frames.append(
                    f'{{"v":1,"channel":"{rec.channel}","type":"{CHANNEL_TYPES[rec.channel]}",'
                    f'"sub":{dumps(sub.id)},"ts":{now_ms()},"data":{payload_text}}}'
                )
        return frames

    def publish(self, events: list[MarketEvent]) -> None:
        for event in events:
            for rec in anaxer_records(event):
                doc_text, payload_text = dumps(rec.record), dumps(rec.payload)
                self.history.append((rec, doc_text))
                for conn in list(self.conns.values()):
                    for frame in self._frames_for(conn, rec, doc_text, payload_text):
                        conn.send(frame)

    def blast_texts(self, conn: Conn, trade: Trade) -> list[str]:
        rec = anaxer_records(trade)[0]
        return self._frames_for(conn, rec, dumps(rec.record), dumps(rec.payload))

    def http_request(self, request: Request) -> Response:
        return self.rest.handle(request)


_V1_MESSAGES = {
    "unknown_channel": "Unknown channel: {channel!r}",
    "plan_restricted": "Your plan doesn't include the {channel} stream.",
    "duplicate_id": "Subscription id {id!r} is already in use",
    "subscription_limit": "Too many subscriptions on this connection",
}
