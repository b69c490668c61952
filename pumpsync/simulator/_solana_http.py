"""The simulated Solana node's HTTP side: JSON-RPC over POST on the WebSocket port (as real nodes
serve both on one host), its errors, and the history calls (``getSignaturesForAddress``,
``getTransaction``) over what the node streamed.
"""

from __future__ import annotations

import http
from typing import Any, ClassVar, Protocol
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode

from pumpsync.simulator._solana_calls import Recipe
from pumpsync.simulator._solana_encode import b58decode
from pumpsync.simulator._solana_tx import render, transaction_result
from pumpsync.simulator._solana_values import PUMP, PUMP_AMM
from pumpsync.simulator.history import History

MAX_SIGNATURES = 1000
MAX_BODY = 1 << 20
VERSION_MESSAGE = (
    "Transaction version (0) is not supported by the requesting client. Please try the request again with the "
    'following configuration parameter: "maxSupportedTransactionVersion": 0'
)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def rpc_error(code: int, message: str, rid: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": rid}


def invalid_param() -> RpcError:
    return RpcError(-32602, "Invalid param: Invalid")


def is_pubkey(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(b58decode(value)) == 32
    except ValueError:
        return False


def is_signature(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(b58decode(value)) == 64
    except ValueError:
        return False


def path_key(path: str) -> str | None:
    """A key given as the URL's one path segment (``wss://host/KEY``)."""
    segment = urlsplit(path).path.strip("/")
    return unquote(segment) if segment and "/" not in segment else None


def http_bytes(status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    """A whole HTTP/1.1 response (the connection closes after it)."""
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Content-Type: application/json"]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class RpcNode(Protocol):
    """What a connection uses of its node (``pumpsync.simulator.solana.SolanaServer``)."""

    ignore_pings: bool

    def http_post(self, path: str, headers: dict[str, str], body: bytes) -> bytes: ...


def post_response(buf: bytearray, node: RpcNode) -> bytes | None:
    """The whole HTTP response to the POST request in ``buf`` (the node's answer, or an HTTP error),
    or None while the request is still incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return http_bytes(431, b"{}") if len(buf) > 65536 else None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", ""))
    except ValueError:
        return http_bytes(411, b"{}")
    if length > MAX_BODY:
        return http_bytes(413, b"{}")
    if len(buf) - end - 4 < length:
        return None
    body = bytes(buf[end + 4 : end + 4 + length])
    parts = lines[0].split(" ")
    return node.http_post(parts[1] if len(parts) > 1 else "/", headers, body)


def rpc_connection_class(server: RpcNode) -> type[ServerConnection]:
    # (long only because it defines the connection class: its methods are short)
    class RpcConnection(ServerConnection):
        """Answers HTTP POST (JSON-RPC) itself and hands everything else to websockets, whose
        handshake parser accepts GET only. Also lets the node ignore protocol pings."""

        node: ClassVar[RpcNode] = server
        _http: bytearray | None = None
        _answered = False
        last_rx = 0.0  # loop time of the client's last bytes (pings count): the idle timer

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            send_frame = self.protocol.send_frame

            def maybe_send(frame: Frame) -> None:
                if frame.opcode is Opcode.PONG and self.node.ignore_pings:
                    return
                send_frame(frame)

            # websockets answers pings inside its protocol object; this is the only seam.
            setattr(self.protocol, "send_frame", maybe_send)  # noqa: B010

        def data_received(self, data: bytes) -> None:
            self.last_rx = self.loop.time()
            if self._http is None and self.request is None and data[:5] == b"POST ":
                self._http = bytearray()
            if self._http is None:
                super().data_received(data)
                return
            if not self._answered:
                self._http += data
                self._answer_post()

        def _answer_post(self) -> None:
            assert self._http is not None
            response = post_response(self._http, self.node)
            if response is not None:
                self._reply(response)

        def _reply(self, response: bytes) -> None:
            self._answered = True
            self.transport.write(response)
            self.transport.close()

    return RpcConnection


class NodeHistory:
    """What the node streamed (``Recipe``s, bounded), served as ``getSignaturesForAddress`` and
    ``getTransaction`` answer."""

    def __init__(self, limit: int | None) -> None:
        self.items: History[Recipe] = History(limit)
        self._positions: dict[str, int] = {}  # signature -> absolute history position

    def append(self, recipe: Recipe) -> None:
        self.items.append(recipe)
        self._positions[recipe.signature] = self.items.total - 1
        if len(self._positions) > 2 * len(self.items) + 1024:
            base = self.items.base
            self._positions = {s: p for s, p in self._positions.items() if p >= base}

    @staticmethod
    def config(params: list[Any], index: int) -> dict[str, Any]:
        config = params[index] if len(params) > index else {}
        if isinstance(config, str):  # the deprecated form: the encoding alone
            config = {"encoding": config}
        if not isinstance(config, dict):
            raise RpcError(-32602, "Invalid params: invalid config")
        if config.get("commitment") == "processed":
            raise RpcError(-32602, "Method does not support commitment below `confirmed`")
        return config

    def _position(self, signature: str) -> int | None:
        pos = self._positions.get(signature)
        return pos if pos is not None and pos >= self.items.base else None

    def signatures(self, params: list[Any]) -> list[dict[str, Any]]:
        if not params or not is_pubkey(params[0]):
            raise invalid_param()
        config = self.config(params, 1)
        limit = config.get("limit", MAX_SIGNATURES)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SIGNATURES:
            raise RpcError(-32602, f"Invalid limit; max {MAX_SIGNATURES}")
        before, until = config.get("before"), config.get("until")
        for sig in (before, until):
            if sig is not None and not is_signature(sig):
                raise invalid_param()
        program = params[0]
        if program not in (PUMP, PUMP_AMM):
            return []
        items = self.items.items
        end = len(items)
        if before is not None:
            pos = self._position(before)
            if pos is None:
                return []
            end = pos - self.items.base
        stop = self._position(until) if until is not None else None
        out: list[dict[str, Any]] = []
        for offset in range(end - 1, -1, -1):
            if len(out) == limit or (stop is not None and offset + self.items.base <= stop):
                break
            recipe = items[offset]
            if program not in recipe.programs:
                continue  # another program's transaction (a PumpSwap trade mentions only PumpSwap)
            out.append(
                {
                    "signature": recipe.signature,
                    "slot": recipe.slot,
                    "err": recipe.err,
                    "memo": None,
                    "blockTime": recipe.block_time,
                    "confirmationStatus": "finalized",
                }
            )
        return out

    def transaction(self, params: list[Any]) -> dict[str, Any] | None:
        if not params or not is_signature(params[0]):
            raise invalid_param()
        config = self.config(params, 1)
        if config.get("encoding", "json") != "json":
            raise RpcError(-32602, "Invalid params: the simulated node serves encoding json only")
        if config.get("maxSupportedTransactionVersion") is None:
            raise RpcError(-32015, VERSION_MESSAGE)
        pos = self._position(params[0])
        if pos is None:
            return None
        recipe = self.items.items[pos - self.items.base]
        return transaction_result(recipe, render(recipe))
