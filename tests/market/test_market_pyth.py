"""SOL/USD from a Pyth PriceUpdateV2 account, served by a JSON-RPC node stub on 127.0.0.1.

The account bytes are built here from the layout in pyth-crosschain's price_update.rs (see
pumpsync/market/_pyth.py), with struct, independently of the decoder's offsets."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mkthelpers import MINT, scenario_trade

from pumpsync.market import Market, PythSolUsd, decode_price_update

FEED = bytes.fromhex("ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d")
OWNER = "rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ"


def account(price: int = 14_523_000_000, expo: int = -8, publish: int | None = None, level: bytes = b"\x01",
            feed: bytes = FEED, slot: int = 380_000_000) -> bytes:  # fmt: skip
    publish = int(time.time()) - 2 if publish is None else publish
    body = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8] + bytes(range(32)) + level
    body += feed + struct.pack("<q", price) + struct.pack("<Q", 7_000_000) + struct.pack("<i", expo)
    body += (
        struct.pack("<q", publish) + struct.pack("<q", publish - 1) + struct.pack("<q", price) + struct.pack("<Q", 1)
    )
    return body + struct.pack("<Q", slot) + b"\x00" * (level == b"\x01")  # allocated for the 2-byte level


class Node:
    def __init__(self) -> None:
        self.reply: Any = None
        self.status = 200
        self.calls: list[dict[str, Any]] = []

    def serve(self, data: bytes, owner: str = OWNER) -> None:
        value = {
            "data": [base64.b64encode(data).decode(), "base64"],
            "owner": owner,
            "lamports": 1,
            "executable": False,
        }
        self.reply = {"jsonrpc": "2.0", "id": 1, "result": {"context": {"slot": 1}, "value": value}}


@pytest.fixture
def node() -> Iterator[tuple[Node, str]]:
    state = Node()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = state.reply if isinstance(state.reply, bytes) else json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/secret-key-123"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_decode_full_and_partial_verification() -> None:
    full = decode_price_update(account())
    assert full.price == pytest.approx(145.23) and full.full_verification and full.posted_slot == 380_000_000
    partial = decode_price_update(account(level=b"\x00\x05"))
    assert partial.price == pytest.approx(145.23) and not partial.full_verification
    for bad in (account(feed=bytes(32)), account(price=-1), account(expo=3), account()[:60], b"x" * 200):
        with pytest.raises(ValueError):
            decode_price_update(bad)


def test_the_market_gets_usd_from_the_node(node: tuple[Node, str]) -> None:
    stub, url = node
    stub.serve(account())
    source = PythSolUsd(url, refresh_s=60)
    market = Market(sol_usd=source)
    market.update(scenario_trade())
    view = market.token(MINT)
    assert view is not None and view.market_cap_usd == pytest.approx((view.market_cap_sol or 0) * 145.23)
    assert market.sol_usd() == pytest.approx(145.23)
    assert len(stub.calls) == 1  # asked again only after refresh_s
    assert stub.calls[0]["method"] == "getAccountInfo" and stub.calls[0]["params"][1] == {"encoding": "base64"}
    assert "secret-key" not in repr(source)


@pytest.mark.parametrize(
    "serve",
    [
        lambda n: n.serve(account(publish=int(time.time()) - 3600)),  # stale
        lambda n: n.serve(account(feed=b"\x01" * 32)),  # another feed
        lambda n: n.serve(account(), owner="11111111111111111111111111111111"),  # not Pyth's account
        lambda n: setattr(n, "reply", b"<html>garbage"),
        lambda n: setattr(n, "reply", {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "busy"}}),
        lambda n: (n.serve(account()), setattr(n, "status", 429)),
        lambda n: setattr(n, "reply", {"jsonrpc": "2.0", "id": 1, "result": {"context": {}, "value": None}}),
    ],
)
def test_no_trustworthy_price_means_no_usd(node: tuple[Node, str], serve: Any) -> None:
    stub, url = node
    serve(stub)
    source = PythSolUsd(url, refresh_s=0)
    market = Market(sol_usd=source)
    market.update(scenario_trade())
    view = market.token(MINT)
    assert view is not None and view.market_cap_usd is None and view.market_cap_sol
    if source.last is None:
        assert source.errors >= 1 and source.last_error and "secret-key" not in source.last_error


def test_an_unreachable_node_is_no_price_and_counted() -> None:
    source = PythSolUsd("http://127.0.0.1:9/k", timeout=1)
    assert source() is None and source.errors == 1 and source.last_error == "ConnectionError"


# -- the account's address, derived independently: the push oracle's PDA of (shard 0, feed id) -------------

_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P


def _on_curve(point: bytes) -> bool:
    """Whether 32 bytes decompress to an ed25519 point (RFC 8032, 5.1.3)."""
    y = int.from_bytes(point, "little") & ((1 << 255) - 1)
    if y >= _P:
        return False
    u, v = (y * y - 1) % _P, (_D * y * y + 1) % _P
    x = u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P) % _P
    return v * x * x % _P in (u, (-u) % _P)


def _find_program_address(seeds: list[bytes], program: bytes) -> bytes:
    for bump in range(255, -1, -1):
        digest = hashlib.sha256(b"".join(seeds) + bytes([bump]) + program + b"ProgramDerivedAddress").digest()
        if not _on_curve(digest):
            return digest
    raise AssertionError("no address")


def test_the_sol_usd_account_is_the_push_oracles_feed_account() -> None:
    import base58  # the test extra

    from pumpsync.market._pyth import SOL_USD_ACCOUNT, SOL_USD_FEED_ID

    push_oracle = base58.b58decode("pythWSnswVUd12oZpeFP8e9CVaEqJg25g1Vtc2biRsT")  # pyth_solana_receiver_sdk
    derived = _find_program_address([(0).to_bytes(2, "little"), SOL_USD_FEED_ID], push_oracle)
    assert base58.b58encode(derived).decode() == SOL_USD_ACCOUNT
