"""OpenPump stream server (document 000): ``/v1/stream?api_key=``, one form, no subscriptions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection

from pumpsync.simulator import records
from pumpsync.simulator.connection import Conn
from pumpsync.simulator.faults import MalformedKind, dumps, openpump_malformed
from pumpsync.simulator.history import History
from pumpsync.simulator.market import Launch, MarketEvent, Trade
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.server import ProviderServer, now_ms

_SUBSCRIPTION_BASE = 12345


class OpenPumpServer(ProviderServer):
    name = "openpump"
    key_param = "api_key"

    def __init__(
        self, host: str, port: int, keys: KeyTable, enrich_delay: float, history_limit: int | None = None
    ) -> None:
        super().__init__(host, port, keys)
        self.enrich_delay = enrich_delay
        self.history: History[tuple[str, str]] = History(history_limit)  # (frame type, JSON text)
        self._pending: set[asyncio.TimerHandle] = set()

    # -- admission and client messages ----------------------------------------------------

    def _status(self, conn: Conn) -> dict[str, Any]:
        return {
            "running": True,
            "subscriptionId": _SUBSCRIPTION_BASE + conn.index,
            "processedCount": self.history.total,
        }

    async def admit(self, ws: ServerConnection, key: str | None) -> Conn | None:
        plan = self.keys.openpump(key)
        if key is None or plan is None:
            await ws.close(1008, "Invalid API key")
            return None
        if not plan.streaming:
            await ws.close(4001, "Plan restriction (upgrade required): streaming is Pro/Enterprise only")
            return None
        if self.key_connections(key) >= plan.max_connections:
            await ws.close(4001, f"Plan restriction: {plan.max_connections} concurrent connections at most")
            return None
        conn = self.register(ws, key, plan.name)
        conn.send(
            dumps(
                {
                    "type": "connected",
                    "message": "Connected to OpenPump real-time stream",
                    "timestamp": now_ms(),
                    "status": self._status(conn),
                }
            )
        )
        conn.ready = True
        return conn

    async def on_message(self, conn: Conn, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
        except ValueError:
            return  # the document defines no error frame; ignore
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "ping":
            conn.client_pings += 1
            if not self.ignore_pings:
                conn.send(dumps({"type": "pong", "timestamp": now_ms()}))
        elif kind == "status":
            conn.send(dumps({"type": "status", "data": self._status(conn), "timestamp": now_ms()}))

    def malformed_frame(self, conn: Conn, kind: MalformedKind, size: int) -> str | bytes:
        return openpump_malformed(kind, now_ms(), size)

    # -- market feed ----------------------------------------------------------------------

    def _publish(self, frame: dict[str, Any]) -> None:
        text = dumps(frame)
        self.history.append((frame["type"], text))
        for conn in list(self.conns.values()):
            conn.send(text)

    def publish(self, events: list[MarketEvent]) -> None:
        for event in events:
            if isinstance(event, Launch):
                self._publish(records.openpump_new_token(event))
                self._schedule_enrichment(event)
            elif isinstance(event, Trade):
                self._publish(records.openpump_trade(event))
            # Graduations have no OpenPump frame.

    def _schedule_enrichment(self, launch: Launch) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._pending.discard(handle)
            self._publish(records.openpump_enriched(launch, now_ms()))

        handle = loop.call_later(self.enrich_delay, fire)
        self._pending.add(handle)

    def cancel_pending(self) -> None:
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()

    def blast_texts(self, conn: Conn, trade: Trade) -> list[str]:
        return [dumps(records.openpump_trade(trade))]
