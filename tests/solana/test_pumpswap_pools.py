"""PumpSwap pool -> mint from the trade instruction's accounts, and the graduation-pool check.

The PDA derivation is checked against real mainnet addresses: the create transaction's bonding
curve (fixtures/raw_create_tx_from_gettransaction.json) and two canonical pools of SOURCES.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import base58 as reference_b58
import pytest

from pumpsync import Client
from pumpsync.events import Event
from pumpsync.providers._pda import find_program_address, graduation_pool, on_curve, pool_authority
from pumpsync.providers.base import Dropped, Refetch, Reply, Subscription
from pumpsync.providers.solana import (
    INNER,
    LOGS,
    PROGRAM_ID,
    PUMPSWAP_PROGRAM_ID,
    Instruction,
    PoolBook,
    Solana,
    compile_filters,
    decode_transaction,
)
from tests.conftest import wait_until
from tests.solana.rpcstub import WsNode, running_ws_node, take
from tests.solana.test_october_2026 import amm_trade, create_pool

FIXTURES = Path(__file__).parent / "fixtures"
WSOL = "So11111111111111111111111111111111111111112"
EVERY = compile_filters({"creations": {}, "trades": {}, "graduations": {}})
# Real canonical pools (mainnet slot 433339880, SOURCES.md): (pool, base mint), quoted in wrapped SOL.
CANONICAL = (
    ("Fr8astXNXz2dJDfvwCQnmqGprADkH89GSbHT5eRwfwMy", "59dCaphi38eZHiuZjJ2n26BuEcktu9ohdH8eAQd8pump"),
    ("GQf9SMW9UVkJTiTibWjLSSQWFAhRvdHi58cyBw5y33NR", "6PS6MdRgu3GdfL1ZW25v9xqVFhjBQYLf6yXEndpwY1ko"),
)


def b58(raw: bytes) -> str:
    return str(reference_b58.b58encode(raw).decode())


def raw(text: str) -> bytes:
    return bytes(reference_b58.b58decode(text))


def ix(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


def event_line(name: str, body: bytes) -> str:
    return "Program data: " + base64.b64encode(hashlib.sha256(f"event:{name}".encode()).digest()[:8] + body).decode()


def amm_logs(*lines: str) -> list[str]:
    return [f"Program {PUMPSWAP_PROGRAM_ID} invoke [1]", *lines, f"Program {PUMPSWAP_PROGRAM_ID} success"]


def buy_instruction(pool: str, mint: str, quote: str = WSOL, name: str = "buy") -> Instruction:
    accounts = (pool, b58(bytes([0x40]) * 32), b58(bytes([0x41]) * 32), mint, quote)
    return Instruction(PUMPSWAP_PROGRAM_ID, accounts + (b58(bytes([0x42]) * 32),) * 18, ix(name) + bytes(16))


def events(out: list[Any]) -> list[Event]:
    return [o for o in out if isinstance(o, Event)]


# ---------------------------------------------------------------- the derivation


def test_program_addresses_match_real_mainnet_accounts() -> None:
    tx = json.loads((FIXTURES / "raw_create_tx_from_gettransaction.json").read_text())
    message = (tx.get("result") or tx)["transaction"]["message"]
    create = next(i for i in message["instructions"] if i.get("programId") == PROGRAM_ID)
    mint, curve = create["accounts"][0], create["accounts"][2]
    found, bump = find_program_address((b"bonding-curve", raw(mint)), raw(PROGRAM_ID))
    assert b58(found) == curve and bump == 253  # 255 and 254 land on the curve: the on-curve test is exercised
    for pool, base in CANONICAL:
        assert graduation_pool(base, WSOL) == pool


def test_on_curve() -> None:
    base_point = (4 * pow(5, 2**255 - 21, 2**255 - 19)) % (2**255 - 19)  # y of ed25519's base point
    assert on_curve(base_point.to_bytes(32, "little"))
    assert not on_curve(raw(CANONICAL[0][0]))  # a PDA is never a point of the curve


# ---------------------------------------------------------------- instruction accounts


def test_a_trade_in_a_pool_never_seen_gets_its_mint_from_the_instruction_accounts() -> None:
    mint = b58(bytes([0x30]) * 32)
    pool = graduation_pool(mint, WSOL)
    pools = PoolBook()
    buy = amm_trade("BuyEvent", raw(pool), bytes([0x40]) * 32, 2_000_000, 500_000_000)
    out: list[Any] = []
    source = decode_transaction(
        amm_logs(event_line("BuyEvent", buy)), [buy_instruction(pool, mint)], "S", 9, 1, 0, False, EVERY, out, pools
    )
    (trade,) = events(out)
    assert source == LOGS and trade.mint == mint and trade.venue == "pumpswap" and trade.raw["graduation_pool"]
    assert pools.get(pool) == (mint, True, WSOL)
    assert pools.counts()["instruction_accounts"] == 1 and pools.counts()["lookalike"] == 0


def test_a_look_alike_pool_of_another_creator_is_not_taken_for_the_token() -> None:
    mint = b58(bytes([0x31]) * 32)
    creator = bytes([0x77]) * 32
    seeds = (b"pool", (1).to_bytes(2, "little"), creator, raw(mint), raw(WSOL))
    lookalike = b58(find_program_address(seeds, raw(PUMPSWAP_PROGRAM_ID))[0])
    pools = PoolBook()
    buy = amm_trade("BuyEvent", raw(lookalike), bytes([0x40]) * 32, 1_000_000, 1_000_000)
    logs = amm_logs(event_line("BuyEvent", buy))
    out: list[Any] = []
    decode_transaction(logs, [buy_instruction(lookalike, mint)], "S", 9, 1, 0, False, EVERY, out, pools)
    assert out == [Dropped("other_pool")] and pools.counts()["lookalike"] == 1
    every_pool = compile_filters({"trades": {"pools": "all"}})
    out = []
    decode_transaction(logs, [], "S", 9, 1, 0, False, every_pool, out, pools)
    (trade,) = events(out)
    assert trade.mint == mint and trade.raw["graduation_pool"] is False


def test_create_pool_events_are_checked_not_assumed() -> None:
    mint = bytes([0x32]) * 32
    canonical = raw(graduation_pool(b58(mint), WSOL))
    authority = raw(pool_authority(b58(mint)))
    pools = PoolBook()
    real = create_pool(0, mint, canonical)
    real = real[:10] + authority + real[42:74] + raw(WSOL) + real[106:]  # creator, then quote mint
    fake = create_pool(0, mint, bytes([0x33]) * 32)  # index 0, but another creator and address
    out: list[Any] = []
    decode_transaction(
        amm_logs(event_line("CreatePoolEvent", real), event_line("CreatePoolEvent", fake)),
        [],
        "S",
        9,
        1,
        0,
        False,
        EVERY,
        out,
        pools,
    )
    assert pools.get(b58(canonical)) == (b58(mint), True, WSOL)
    assert pools.get(b58(bytes([0x33]) * 32)) is not None and not pools.get(b58(bytes([0x33]) * 32)).graduated


def test_v2_instructions_teach_a_pool_only_when_the_check_proves_the_mint() -> None:
    mint = b58(bytes([0x34]) * 32)
    pools = PoolBook()
    pool = graduation_pool(mint, WSOL)
    decode_transaction(None, [buy_instruction(pool, mint, name="buy_v2")], "S", 9, 1, 0, False, EVERY, [], pools)
    assert pools.get(pool) == (mint, True, WSOL)
    other = b58(bytes([0x35]) * 32)  # account order unverified for v2: an unproven pool is not learned
    decode_transaction(None, [buy_instruction(other, mint, name="sell_v2")], "S", 9, 1, 0, False, EVERY, [], pools)
    assert pools.get(other) is None


def test_a_cut_log_is_read_from_the_event_cpis_with_the_pool_from_the_accounts() -> None:
    mint = b58(bytes([0x36]) * 32)
    pool = graduation_pool(mint, WSOL)
    buy = amm_trade("BuyEvent", raw(pool), bytes([0x40]) * 32, 3_000_000, 2_000_000)
    tag = bytes.fromhex("e445a52e51cb9a1d") + hashlib.sha256(b"event:BuyEvent").digest()[:8]
    cpi = Instruction(PUMPSWAP_PROGRAM_ID, (b58(bytes([0x50]) * 32),), tag + buy)
    logs = [f"Program {PUMPSWAP_PROGRAM_ID} invoke [1]", "Log truncated"]
    out: list[Any] = []
    assert (
        decode_transaction(logs, [buy_instruction(pool, mint), cpi], "S", 9, 1, 0, True, EVERY, out, PoolBook())
        == INNER
    )
    (trade,) = events(out)
    assert (trade.mint, trade.token_amount, trade.backfill) == (mint, 3.0, True)


# ---------------------------------------------------------------- live: an unknown pool is fetched again


def test_the_dialect_asks_for_the_transaction_of_a_trade_in_an_unknown_pool() -> None:
    dialect = Solana(0, [Subscription("trades")])
    frame, _clock = dialect.on_open()
    (amm,) = dialect.receive(json.dumps({"jsonrpc": "2.0", "result": 5, "id": json.loads(frame)["id"]}), 0)
    assert isinstance(amm, Reply)  # then PumpSwap's logsSubscribe
    buy = amm_trade("BuyEvent", bytes([0x61]) * 32, bytes([0x40]) * 32, 1, 1)
    value = {"signature": "SIG", "err": None, "logs": amm_logs(event_line("BuyEvent", buy))}
    frame = {
        "jsonrpc": "2.0",
        "method": "logsNotification",
        "params": {"subscription": 5, "result": {"context": {"slot": 9}, "value": value}},
    }
    assert dialect.receive(json.dumps(frame), 0) == [Dropped("unknown_pool"), Refetch("SIG", 9)]


@pytest.fixture
def node() -> Iterator[WsNode]:
    with running_ws_node() as ws:
        yield ws


def test_a_coin_graduated_before_the_process_started_is_followed_on_pumpswap(
    make_client: Callable[..., Client], node: WsNode
) -> None:
    """The live log names the pool only: the transaction, fetched again, names the mint."""
    mint = b58(bytes([0x37]) * 32)
    pool = graduation_pool(mint, WSOL)
    client = make_client("solana", node.url, rest_url=f"http://127.0.0.1:{node.history.port}/").start()
    wait_until(lambda: node.subscribers() == 1, what="the logsSubscribe")
    buy = amm_trade("BuyEvent", raw(pool), bytes([0x40]) * 32, 4_000_000, 1_000_000)
    logs = amm_logs(event_line("BuyEvent", buy))
    keys = [pool, b58(bytes([0x40]) * 32), b58(bytes([0x41]) * 32), mint, WSOL, PUMPSWAP_PROGRAM_ID]
    message = {
        "accountKeys": keys,
        "instructions": [{"programIdIndex": 5, "accounts": [0, 1, 2, 3, 4], "data": b58(ix("buy") + bytes(16))}],
    }
    tx = {
        "slot": 50,
        "meta": {"err": None, "logMessages": logs, "innerInstructions": []},
        "transaction": {"message": message},
    }
    node.history.add("P1", 50, tx)  # the node's own copy, with the instruction's accounts
    node.push("P1", 50, logs)
    (trade,) = take(client, 1)
    assert (trade.mint, trade.venue, trade.token_amount, trade.backfill) == (mint, "pumpswap", 4.0, True)
    # counted where it was seen, then recovered
    assert client.stats()["connections"][0]["filtered"].get("unknown_pool", 0) == 1
