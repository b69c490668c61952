"""Simulated Solana RPC node streaming the pump.fun program's transactions.

One port serves both interfaces, as real nodes do (``wss://`` and ``https://`` on one host):

- WebSocket JSON-RPC 2.0: ``logsSubscribe`` (``mentions`` one address, or ``all``) with a
  commitment, ``logsUnsubscribe``, ``logsNotification``s whose logs look like real pump.fun
  transactions (``free-sources.md`` section 1). Protocol pings are answered (unless
  ``ignore_pings``); the node sends no application heartbeat.
- HTTP JSON-RPC (POST, batches too): ``getSignaturesForAddress`` (newest first, ``before`` /
  ``until`` / ``limit``), ``getTransaction`` (encoding ``json``), plus ``getSlot``,
  ``getHealth`` and ``getVersion``. History serves exactly the transactions that were
  streamed (failed ones included), whether or not anyone was subscribed.

A key is optional (``/KEY`` path segment, ``?api-key=`` or Bearer); ``sim-invalid`` is
refused with HTTP 401 (upgrade and POST), ``sim-ratelimited`` with HTTP 429, and
``sim-free`` may read history but its ``logsSubscribe`` gets a JSON-RPC error.

Market mapping: a launch is one transaction (``CreateV2``/``Create`` with CreateEvent, and
the creator's first buy's TradeEvent when the market made one); a trade is one
transaction (TradeEvent; the buy that completes a curve also carries CompleteEvent); a
graduation adds a later migration transaction (CompletePumpAmmMigrationEvent) whose
signature is the market ``Graduation``'s.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from pumpsync.simulator._solana_calls import Recipe, RecipeKind
from pumpsync.simulator._solana_encode import LAYOUTS, LayoutName, derived_key
from pumpsync.simulator._solana_http import (
    NodeHistory,
    RpcError,
    http_bytes,
    is_pubkey,
    path_key,
    rpc_connection_class,
    rpc_error,
)
from pumpsync.simulator._solana_tx import (
    fault_signature,
    render,
    value_text,
)
from pumpsync.simulator._solana_values import PUMP
from pumpsync.simulator.connection import Conn, Subscription
from pumpsync.simulator.faults import MalformedKind, RestFailure, dumps
from pumpsync.simulator.market import Curve, Graduation, Launch, MarketEvent, Trade
from pumpsync.simulator.plans import KeyTable, SolanaPlan
from pumpsync.simulator.server import ProviderServer, json_response, now_ms, request_key

COMMITMENTS = ("processed", "confirmed", "finalized")
SUBSCRIPTION_BASE = 24040
HISTORY_METHODS = frozenset({"getSignaturesForAddress", "getTransaction"})
INVALID_KEY_MESSAGE = "invalid api key provided"
RATE_LIMIT_MESSAGE = "Too many requests for a specific RPC call, contact your app developer or support@rpcpool.com."

NextFault = Literal["truncated", "oversized"]
NEXT_FAULTS: tuple[NextFault, ...] = ("truncated", "oversized")
InjectKind = Literal["failed", "unknown_event", "undecodable"]
INJECT_KINDS: tuple[InjectKind, ...] = ("failed", "unknown_event", "undecodable")
OVERSIZED_DEFAULT = 3 * (1 << 19)  # 1.5 MiB of log lines


class SolanaServer(ProviderServer):
    name = "solana"
    key_param = "api-key"
    stream_paths: ClassVar[tuple[str, ...]] = ()  # any path: RPC providers put the key in it
    url_path = "/"

    def __init__(
        self,
        host: str,
        port: int,
        keys: KeyTable,
        current_slot: Callable[[], int],
        history_limit: int | None = None,
    ) -> None:
        super().__init__(host, port, keys)
        self.current_slot = current_slot
        # Recipes, not texts: rendering is deterministic, and a long run keeps 100k of them.
        self.history = NodeHistory(history_limit)  # Recipes, not texts: a long run keeps 100k of them
        self.rest_failures: deque[RestFailure] = deque()
        self.layout: LayoutName = "current"
        self.mute_subscribe = False
        self.subscribe_errors: deque[tuple[int, str]] = deque()  # answers for the next logsSubscribe requests
        self.subscribe_requests = 0  # logsSubscribe requests seen (answered or not)
        self.rpc_calls: Counter[str] = Counter()  # HTTP JSON-RPC calls by method (others: "other")
        self._next_faults: deque[tuple[NextFault, int]] = deque()
        self._tokens: OrderedDict[str, tuple[str, bool]] = OrderedDict()  # mint -> (creator, mayhem)
        self._plans: dict[int, SolanaPlan] = {}
        self._next_sub = SUBSCRIPTION_BASE
        self._injected = 0
        self.idle_timeout: float | None = None

    # -- admission -------------------------------------------------------------------------

    def connection_class(self) -> type[ServerConnection]:
        return rpc_connection_class(self)

    def _key(self, request: Request) -> str | None:
        return request_key(request, self.key_param) or path_key(request.path)

    def upgrade_response(self, ws: ServerConnection, request: Request) -> Response | None:
        if "/" in urlsplit(request.path).path.strip("/"):
            return ws.respond(404, "Not found\n")
        plan = self.keys.solana(self._key(request))
        if plan is None:
            return json_response(401, rpc_error(-32401, INVALID_KEY_MESSAGE, None))
        if plan.rate_limited:
            return json_response(429, rpc_error(429, RATE_LIMIT_MESSAGE, None), [("Retry-After", "1")])
        return None

    async def admit(self, ws: ServerConnection, key: str | None) -> Conn | None:
        assert ws.request is not None
        key = self._key(ws.request)
        plan = self.keys.solana(key)
        if plan is None:  # upgrade_response already refused these; kept for safety
            await ws.close(1008, INVALID_KEY_MESSAGE)
            return None
        conn = self.register(ws, key or "", plan.name)
        self._plans[conn.index] = plan
        conn.ready = True
        conn.spawn(self._idle_watch(conn))
        return conn

    async def _idle_watch(self, conn: Conn) -> None:
        """Close sockets the client left silent for ``idle_timeout`` (as Helius does after 10 min)."""
        loop = asyncio.get_running_loop()
        while conn.is_open:
            timeout = self.idle_timeout
            await asyncio.sleep(0.25 if timeout is None else min(0.25, timeout / 4))
            last: float = getattr(conn.ws, "last_rx", 0.0)
            if timeout is not None and not conn.stalled and loop.time() - last > timeout:
                await conn.ws.close(1001, "idle timeout")
                return

    def on_closed(self, conn: Conn) -> None:
        self._plans.pop(conn.index, None)

    # -- WebSocket JSON-RPC ----------------------------------------------------------------

    async def on_message(self, conn: Conn, message: str | bytes) -> None:
        try:
            msg = json.loads(message)
        except ValueError:
            conn.send(dumps(rpc_error(-32700, "Parse error", None)))
            return
        replies = [r for r in (self._ws_call(conn, m) for m in (msg if isinstance(msg, list) else [msg])) if r]
        if isinstance(msg, list) and not msg:
            replies = [rpc_error(-32600, "Invalid request", None)]
        if replies:
            conn.send(dumps(replies if isinstance(msg, list) else replies[0]))

    def _ws_call(self, conn: Conn, msg: Any) -> dict[str, Any] | None:
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return rpc_error(-32600, "Invalid request", rid)
        method, params = msg["method"], msg.get("params", [])
        try:
            if method == "logsSubscribe":
                self.subscribe_requests += 1
                if self.mute_subscribe:
                    return None
                if self.subscribe_errors:
                    raise RpcError(*self.subscribe_errors.popleft())
                if not self._plans[conn.index].subscribe:
                    raise RpcError(-32601, "Method logsSubscribe is not available on your plan")
                return {"jsonrpc": "2.0", "result": self._subscribe(conn, params), "id": rid}
            if method == "logsUnsubscribe":
                if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], int):
                    raise RpcError(-32602, "Invalid params: expected [subscription id]")
                if conn.subs.pop(str(params[0]), None) is None:
                    raise RpcError(-32602, "Invalid subscription id.")
                return {"jsonrpc": "2.0", "result": True, "id": rid}
            if method == "slotSubscribe":  # the client's data clock; the simulator acks it and sends no slots
                self._next_sub += 1
                return {"jsonrpc": "2.0", "result": self._next_sub, "id": rid}
            raise RpcError(-32601, "Method not found")
        except RpcError as exc:
            return rpc_error(exc.code, exc.message, rid)

    def _subscribe(self, conn: Conn, params: Any) -> int:
        if not isinstance(params, list) or not 1 <= len(params) <= 2:
            raise RpcError(-32602, "Invalid params: expected [filter, config]")
        flt, config = params[0], params[1] if len(params) == 2 else {}
        if flt in ("all", "allWithVotes"):
            mentions = None
        elif isinstance(flt, dict) and set(flt) == {"mentions"} and isinstance(flt["mentions"], list):
            if len(flt["mentions"]) != 1:
                raise RpcError(-32602, "Invalid Request: Only 1 address supported")
            if not is_pubkey(flt["mentions"][0]):
                raise RpcError(-32602, "Invalid Request: Invalid pubkey provided")
            mentions = flt["mentions"][0]
        else:
            raise RpcError(-32602, "Invalid params: invalid filter")
        if not isinstance(config, dict):
            raise RpcError(-32602, "Invalid params: invalid config")
        commitment = config.get("commitment", "finalized")
        if commitment not in COMMITMENTS:
            raise RpcError(
                -32602,
                f"Invalid params: unknown variant `{commitment}`, expected one of `processed`, "
                "`confirmed`, `finalized`",
            )
        sub_id, self._next_sub = self._next_sub, self._next_sub + 1
        raw = {"filter": flt, "commitment": commitment}
        conn.subs[str(sub_id)] = Subscription(
            "logs", {"mentions": mentions, "commitment": commitment}, raw, str(sub_id)
        )
        return sub_id

    # -- HTTP JSON-RPC ---------------------------------------------------------------------

    def http_request(self, request: Request) -> Response:
        if urlsplit(request.path).path.rstrip("/") == "/health":
            headers = Headers([("Content-Type", "text/plain"), ("Content-Length", "2"), ("Connection", "close")])
            return Response(200, "OK", headers, b"ok")
        return json_response(405, rpc_error(-32600, "Use POST for JSON-RPC requests", None))

    def http_post(self, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """One HTTP JSON-RPC exchange (runs on the simulator's loop); the raw response."""
        auth = headers.get("authorization", "")
        bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        query = urlsplit(path).query
        key = bearer or next((v for k, _, v in (p.partition("=") for p in query.split("&")) if k == self.key_param), "")
        plan = self.keys.solana(unquote(key) or path_key(path))
        if plan is None:
            return self._http_json(401, rpc_error(-32401, INVALID_KEY_MESSAGE, None))
        if plan.rate_limited:
            return self._http_json(429, rpc_error(429, RATE_LIMIT_MESSAGE, None), [("Retry-After", "1")])
        try:
            msg = json.loads(body)
        except ValueError:
            return self._http_json(200, rpc_error(-32700, "Parse error", None))
        calls = msg if isinstance(msg, list) else [msg]
        if self.rest_failures and any(isinstance(c, dict) and c.get("method") in HISTORY_METHODS for c in calls):
            failure = self.rest_failures.popleft()
            extra = [("Retry-After", f"{failure.retry_after:g}")] if failure.status == 429 else []
            message = RATE_LIMIT_MESSAGE if failure.status == 429 else "Injected failure"
            rid = calls[0].get("id") if calls and isinstance(calls[0], dict) else None
            return self._http_json(failure.status, rpc_error(failure.status, message, rid), extra)
        if not calls:
            return self._http_json(200, rpc_error(-32600, "Invalid request", None))
        replies = [self._http_call(c) for c in calls]
        return self._http_json(200, replies if isinstance(msg, list) else replies[0])

    @staticmethod
    def _http_json(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> bytes:
        return http_bytes(status, json.dumps(obj, separators=(",", ":")).encode(), headers)

    def _http_call(self, msg: Any) -> dict[str, Any]:
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0" or not isinstance(msg.get("method"), str):
            return rpc_error(-32600, "Invalid request", rid)
        params = msg.get("params", [])
        if not isinstance(params, list):
            return rpc_error(-32602, "Invalid params", rid)
        handlers: dict[str, Callable[[list[Any]], Any]] = {
            "getSignaturesForAddress": self.history.signatures,
            "getTransaction": self.history.transaction,
            "getSlot": lambda p: self.current_slot(),
            "getHealth": lambda p: "ok",
            "getVersion": lambda p: {"solana-core": "2.2.7", "feature-set": 3294202862},
        }
        handler = handlers.get(msg["method"])
        self.rpc_calls[msg["method"] if handler is not None else "other"] += 1
        if handler is None:
            return rpc_error(-32601, "Method not found", rid)
        try:
            return {"jsonrpc": "2.0", "result": handler(params), "id": rid}
        except RpcError as exc:
            return rpc_error(exc.code, exc.message, rid)

    # -- market feed ------------------------------------------------------------------------

    def _token(self, mint: str) -> tuple[str, bool]:
        return self._tokens.get(mint) or (derived_key("creator", mint), False)

    def _remember(self, launch: Launch) -> None:
        self._tokens[launch.mint] = (launch.token.creator, launch.token.mayhem_mode)
        while len(self._tokens) > 5000:
            self._tokens.popitem(last=False)

    def _recipe(self, kind: RecipeKind, event: MarketEvent, **parts: Any) -> Recipe:
        """The transaction of ``event`` (its signature, slot and time) in the current layout."""
        creator, mayhem = self._token(event.mint)
        return Recipe(
            kind,
            event.signature,
            event.slot,
            event.timestamp // 1000,
            creator=creator,
            mayhem=mayhem,
            layout=self.layout,
            **parts,
        )

    def _recipes(self, events: list[MarketEvent]) -> Iterator[Recipe]:
        i = 0
        while i < len(events):
            event = events[i]
            after = events[i + 1] if i + 1 < len(events) else None
            if isinstance(event, Launch):
                self._remember(event)
                first_buy = after if isinstance(after, Trade) and after.signature == event.signature else None
                yield self._recipe("launch", event, launch=event, trade=first_buy)
                i += 2 if first_buy is not None else 1
            elif isinstance(event, Trade) and event.venue == "pumpswap":
                yield self._recipe("swap", event, trade=event)  # a graduated token's PumpSwap trade
                i += 1
            elif isinstance(event, Trade):
                grad = after if isinstance(after, Graduation) and after.mint == event.mint else None
                yield self._recipe("trade", event, trade=event, graduation=grad)
                if grad is not None:
                    yield self._recipe("migrate", grad, graduation=grad)
                i += 2 if grad is not None else 1
            else:
                yield self._recipe("migrate", event, graduation=event)
                i += 1

    def _modified(self, recipe: Recipe) -> Recipe:
        if self._next_faults:
            fault, size = self._next_faults.popleft()
            recipe = replace(recipe, truncated=True) if fault == "truncated" else replace(recipe, pad_to=size)
        return recipe

    def publish(self, events: list[MarketEvent]) -> None:
        for recipe in self._recipes(events):
            self._stream(self._modified(recipe))

    def _stream(self, recipe: Recipe) -> None:
        rendered = render(recipe)
        value = value_text(recipe, rendered)
        self.history.append(recipe)
        for conn in list(self.conns.values()):
            for text in self._notifications(conn, recipe.slot, value, recipe.programs):
                conn.send(text)

    @staticmethod
    def _notifications(conn: Conn, slot: int, value: str, programs: tuple[str, ...] = (PUMP,)) -> list[str]:
        return [
            f'{{"jsonrpc":"2.0","method":"logsNotification","params":{{"result":{{"context":{{"slot":{slot}}},'
            f'"value":{value}}},"subscription":{sub.id}}}}}'
            for sub in conn.subs.values()
            if sub.filters["mentions"] is None or sub.filters["mentions"] in programs
        ]

    def blast_texts(self, conn: Conn, trade: Trade) -> list[str]:
        recipe = self._recipe("trade", trade, trade=trade)
        return self._notifications(conn, trade.slot, value_text(recipe, render(recipe)))

    # -- faults -------------------------------------------------------------------------------

    def set_layout(self, layout: LayoutName) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout = layout

    def fault_next(self, fault: NextFault, n: int, size: int) -> None:
        if fault not in NEXT_FAULTS:
            raise ValueError(f"fault must be one of {NEXT_FAULTS}, got {fault!r}")
        self._next_faults.extend([(fault, size)] * n)

    def _fake_trade(self, label: str) -> Trade:
        """A plausible trade on a recently launched token (a fresh one if none is known)."""
        n, self._injected = self._injected, self._injected + 1
        mint = next(reversed(self._tokens), None) or derived_key("sim-mint", label, str(n))
        curve, tokens, lamports = Curve().buy(500_000_000 + 1_000_000 * (n % 100))
        slot, ms = self.current_slot(), now_ms()
        trader = derived_key("sim-wallet", label, str(n))
        return Trade(mint, trader, "buy", lamports, tokens, fault_signature(label, n), slot, ms, curve, 150.0)

    def inject(self, kind: InjectKind, n: int) -> list[str]:
        """Stream ``n`` extra transactions of ``kind``; their signatures."""
        if kind not in INJECT_KINDS:
            raise ValueError(f"kind must be one of {INJECT_KINDS}, got {kind!r}")
        signatures = []
        for _ in range(n):
            trade = self._fake_trade(kind)
            recipe = self._recipe(kind, trade, trade=trade)
            self._stream(recipe)
            signatures.append(recipe.signature)
        return signatures

    def malformed_frame(self, conn: Conn, kind: MalformedKind, size: int) -> str | bytes:
        sub = next(iter(conn.subs.values()), None)
        sub_id = sub.id if sub is not None else str(SUBSCRIPTION_BASE)
        trade = self._fake_trade("malformed")
        recipe = self._recipe("trade", trade, trade=trade)
        value: dict[str, Any] = json.loads(value_text(recipe, render(recipe)))
        frame: dict[str, Any] = {
            "jsonrpc": "2.0",
            "method": "logsNotification",
            "params": {"result": {"context": {"slot": trade.slot}, "value": value}, "subscription": int(sub_id or 0)},
        }
        if kind == "not_json":
            return '{"jsonrpc":"2.0","method":"logsNotification","params": this is not JSON'
        if kind == "json_array":
            return dumps([{"jsonrpc": "2.0"}, 1, "two"])
        if kind == "unknown_type":
            return dumps({"jsonrpc": "2.0", "method": "simUnknownNotification", "params": {"result": 0}})
        if kind == "missing_fields":
            del value["signature"]
            del frame["params"]["result"]["context"]
            return dumps(frame)
        if kind == "binary":
            return dumps(frame).encode()
        if kind == "oversized":
            base = dumps(frame)
            filler = size - len(base.encode()) - len(',""') - len("Program log: ")
            value["logs"].append("Program log: " + "x" * max(0, filler))
            return dumps(frame)
        raise ValueError(f"unknown malformed kind {kind!r}")

    def stored(self) -> list[Recipe]:
        return list(self.history.items)


def history_record(recipe: Recipe) -> dict[str, Any]:
    """``Simulator.history("solana")`` item: the streamed value plus slot, blockTime, channels."""
    value: dict[str, Any] = json.loads(value_text(recipe, render(recipe)))
    return {
        **value,
        "slot": recipe.slot,
        "blockTime": recipe.block_time,
        "kind": recipe.kind,
        "channels": list(recipe.channels),
    }


def matches_channel(recipe: Recipe, channel: str | None) -> bool:
    return channel is None or channel in recipe.channels


__all__ = [
    "INJECT_KINDS",
    "NEXT_FAULTS",
    "OVERSIZED_DEFAULT",
    "InjectKind",
    "LayoutName",
    "NextFault",
    "SolanaServer",
    "history_record",
    "matches_channel",
]
