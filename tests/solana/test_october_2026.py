"""The pump.fun program of October 2026 and PumpSwap, through the dialect.

Events are the real captured lines of the fixtures where they exist, and otherwise built here by hand
with ``struct`` (field by field, as the layouts of shared/reference/onchain-2026.md and the IDL give
them): no code shared with the decoder or with the simulator's encoder.
"""

from __future__ import annotations

import base64
import logging
import struct
from pathlib import Path
from typing import Any

import base58 as reference_b58
import pytest

from pumpsync.events import Event
from pumpsync.providers.base import Dropped, Subscription
from pumpsync.providers.solana import (
    DRIFT,
    PROGRAM_ID,
    PUMPSWAP_PROGRAM_ID,
    SPEC,
    PoolBook,
    Solana,
    compile_filters,
    decode_logs,
)

FIXTURES = Path(__file__).parent / "fixtures"
MINT = "CWiTGbCiDd8BKtNYNE2boT9fJGFG2MU53Uf6HQk4pump"
CREATOR = "5htGpHK2oV9g2BcDqLdRBqjCLdy8mc3fsESfR5DU73eM"
SOL = bytes(32)
EVERY = ("creations", "trades", "graduations")


def disc(name: str) -> bytes:
    import hashlib

    return hashlib.sha256(f"event:{name}".encode()).digest()[:8]


def key(n: int) -> bytes:
    return bytes([n]) * 32


def b58(raw: bytes) -> str:
    return str(reference_b58.b58encode(raw).decode())


def line(name: str, body: bytes) -> str:
    return "Program data: " + base64.b64encode(disc(name) + body).decode()


def captured(index: int) -> bytes:
    text = (FIXTURES / "captured_program_data.txt").read_text().splitlines()[index]
    return base64.b64decode(text.removeprefix("Program data: "))


def run(logs: list[str], filters: dict[str, dict[str, Any]] | None = None, pools: PoolBook | None = None) -> list[Any]:
    out: list[Any] = []
    compiled = compile_filters(filters if filters is not None else {c: {} for c in EVERY})
    decode_logs(logs, "SIG", 7, 1, 0, False, compiled, out, pools=PoolBook() if pools is None else pools)
    return out


def invoked(program: str, *lines: str) -> list[str]:
    return [f"Program {program} invoke [1]", *lines, f"Program {program} success"]


def events(outputs: list[Any]) -> list[Event]:
    return [o for o in outputs if isinstance(o, Event)]


# ---------------------------------------------------------------- the curve


def post_complete_buy(user: bytes, mint: bytes, base_out: int, quote_in: int) -> bytes:
    body = user + mint + key(40) + SOL + struct.pack("<q", 1_791_000_000)
    body += struct.pack("<QQ", base_out, quote_in) + struct.pack("<QQQQQ", 95, 10, 30, 3, 1)
    body += struct.pack("<QQQQ", 206_900_000_000_000, 84_990_000_000, 206_900_000_000_000 - base_out, 85_000_000_000)
    assert len(body) == 224
    return body


def test_a_curve_completing_v3_buy_is_one_trade_with_the_buyers_whole_amounts() -> None:
    trade = captured(1)  # a real buy by CREATOR of MINT
    complete = b58_bytes(CREATOR) + b58_bytes(MINT) + key(40) + struct.pack("<q", 1_791_000_000) + SOL
    post = post_complete_buy(b58_bytes(CREATOR), b58_bytes(MINT), 5_000_000_000_000, 1_500_000_000)
    logs = invoked(
        PROGRAM_ID,
        "Program log: Instruction: BuyV3",
        "Program data: " + base64.b64encode(trade).decode(),
        line("CompleteEvent", complete),
        line("PostCompleteBuyEvent", post),
    )
    joined, graduation = events(run(logs))
    assert joined.kind == "trade" and graduation.kind == "graduation"
    assert joined.sol_amount == (2_962_962_962 + 1_500_000_000) / 1e9
    assert joined.token_amount == (96_449_438_144_093 + 5_000_000_000_000) / 1e6
    assert joined.raw["sol_amount"] == 2_962_962_962  # the curve part, as the program reported it
    assert joined.raw["post_complete_buy"]["quote_in"] == 1_500_000_000
    assert joined.raw["post_complete_buy"]["pool_quote_reserves_after"] == 85_000_000_000
    assert joined.venue == "curve" and joined.trader == CREATOR


def b58_bytes(text: str) -> bytes:
    return bytes(reference_b58.b58decode(text))


def test_a_post_complete_buy_without_its_trade_is_a_trade_of_its_own() -> None:
    post = post_complete_buy(key(5), key(6), 1_000_000, 2_000_000)
    (trade,) = events(run(invoked(PROGRAM_ID, line("PostCompleteBuyEvent", post))))
    assert (trade.mint, trade.trader, trade.side) == (b58(key(6)), b58(key(5)), "buy")
    assert (trade.sol_amount, trade.token_amount) == (0.002, 1.0)


def test_sweeps_are_fee_payouts_counted_not_trades_nor_unknown() -> None:
    curve = struct.pack("<q", 1_791_000_000) + key(1) + key(2) + SOL + key(3) + struct.pack("<QB", 123, 1)
    pool = struct.pack("<q", 1_791_000_000) + key(4) + key(1) + SOL + key(3) + key(5) + struct.pack("<QB", 9, 0)
    assert (len(curve), len(pool)) == (145, 177)
    out = run(invoked(PROGRAM_ID, line("SweepBondingCurveFeeEvent", curve)))
    out += run(invoked(PUMPSWAP_PROGRAM_ID, line("SweepPoolFeeEvent", pool)))
    assert out == [Dropped("fee_payout"), Dropped("fee_payout")]
    assert "fee_payout" in SPEC.filter_reasons


def with_creator(create: bytes, creator: bytes) -> bytes:
    at = 8 + 4 + 14 + 4 + 3 + 4 + 64 + 3 * 32  # after the strings, mint, bonding curve and user
    return create[:at] + creator + create[at + 32 :]


def test_a_holder_reward_coins_creator_is_its_developer() -> None:
    tail = struct.pack("<QBB", 50, 1, 0)  # creator_fee_bps, is_holder_reward, depth
    create = with_creator(captured(0), key(9)) + tail  # the program's address as the curve's creator
    (launch,) = events(run(invoked(PROGRAM_ID, "Program data: " + base64.b64encode(create).decode())))
    assert launch.creator == CREATOR  # the CreateEvent's user: the developer
    assert launch.raw["creator"] == b58(key(9)) and launch.raw["is_holder_reward"] is True
    assert launch.raw["creator_fee_bps"] == 50
    plain = with_creator(captured(0), key(9)) + struct.pack("<QBB", 0, 0, 0)
    (launch,) = events(run(invoked(PROGRAM_ID, "Program data: " + base64.b64encode(plain).decode())))
    assert launch.creator == b58(key(9))


def test_launches_carry_virtual_reserves_from_the_event_or_the_initial_constants() -> None:
    create = captured(0)
    (launch,) = events(run(["Program data: " + base64.b64encode(create).decode()]))
    assert (launch.virtual_sol_reserves, launch.virtual_token_reserves) == (30.0, 1_073_000_000.0)
    assert launch.price_sol == 30.0 / 1_073_000_000.0 and "reserves_from" not in launch.raw
    april_2025 = create[: 8 + 4 + 14 + 4 + 3 + 4 + 64 + 4 * 32 + 8]  # 8 fields: up to the timestamp
    (launch,) = events(run(["Program data: " + base64.b64encode(april_2025).decode()]))
    assert (launch.virtual_sol_reserves, launch.virtual_token_reserves) == (30.0, 1_073_000_000.0)
    assert launch.raw["reserves_from"] == "program_constants"


def test_new_ix_names_decode() -> None:
    trade = captured(1)
    at = trade.index(b"buy_exact_sol_in") - 4
    for name in ("buy_v3", "sell_v3", "buy_exact_quote_in_v3", "buy_exact_quote_in", "multi_hop_swap"):
        data = trade[:at] + struct.pack("<I", len(name)) + name.encode() + trade[at + 4 + 16 :]
        (event,) = events(run(["Program data: " + base64.b64encode(data).decode()]))
        assert event.raw["ix_name"] == name
        assert event.raw.get("multi_hop", False) == (name == "multi_hop_swap")


def test_a_multi_hop_swap_marks_every_hop() -> None:
    logs = invoked(PUMPSWAP_PROGRAM_ID, "Program log: Instruction: MultiHopSwap")
    logs[1:1] = invoked(PROGRAM_ID, "Program data: " + base64.b64encode(captured(1)).decode())
    (hop,) = events(run(logs))
    assert hop.raw["multi_hop"] is True


# ---------------------------------------------------------------- layout drift


def test_a_tail_that_does_not_fit_is_delivered_with_what_is_certain_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 2026-10-03 sample: the ix_name string six bytes later than the append-only rule puts it."""
    trade = captured(1)
    at = trade.index(b"buy_exact_sol_in") - 4
    shifted = trade[:at] + bytes([7, 0, 0, 0, 0, 0]) + trade[at:]
    before = DRIFT.counts()
    with caplog.at_level(logging.WARNING, logger="pumpsync.solana"):
        (event,) = events(run(["Program data: " + base64.b64encode(shifted).decode()]))
        events(run(["Program data: " + base64.b64encode(shifted).decode()]))
    after = DRIFT.counts()
    reason = event.raw["decode_drift"]
    assert after[("TradeEvent", reason)] == before[("TradeEvent", reason)] + 2
    assert "ix_name" not in event.raw and "cashback_fee_basis_points" not in event.raw
    assert event.token_amount == 96_449_438_144_093 / 1e6 and event.trader == CREATOR  # certain: fixed offsets
    assert event.sol_amount is None  # the quote mint is in the lost tail: SOL or USDC cannot be told
    warnings = [r for r in caplog.records if "TradeEvent" in r.getMessage()]
    assert len(warnings) <= 1  # once per kind and hour (an earlier test may have warned already)


def test_implausible_basis_points_bools_and_longer_events_are_counted() -> None:
    trade = captured(1)
    end = trade.index(b"buy_exact_sol_in") + 16
    bad_bool = trade[:end] + b"\x07" + trade[end + 1 :]  # mayhem_mode
    bad_bps = trade[: end + 1] + struct.pack("<Q", 8_700_000_000_000_000_000) + trade[end + 9 :]
    longer = trade + struct.pack("<QQQ", 0, 0, 0) + b"\x01\x02"
    reasons = []
    for data in (bad_bool, bad_bps, longer):
        (event,) = events(run(["Program data: " + base64.b64encode(data).decode()]))
        reasons.append(event.raw["decode_drift"])
    assert reasons == ["implausible_bool", "implausible_bps", "longer_than_known"]
    assert all(n >= 0 for n in DRIFT.counts().values())
    assert ("SellEvent", "implausible_pubkey") in DRIFT.counts()  # exported at 0 before any


# ---------------------------------------------------------------- PumpSwap


def amm_trade(name: str, pool: bytes, user: bytes, base: int, quote: int, virtual_quote: int = 0) -> bytes:
    """A 2026-10 Buy/SellEvent, by hand: the IDL's fields, then the appended tail."""
    reserves = (1_000_000_000_000, 100_000_000_000)  # pool base (tokens) and quote (lamports) before
    body = struct.pack("<q", 1_791_000_000)
    body += struct.pack("<QQQQQQ", base, quote, 0, 0, *reserves)
    body += struct.pack("<QQQQQQQ", quote, 20, 1, 5, 2, quote, quote)
    body += b"".join(key(n) for n in (0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16))
    at = 8 + 13 * 8  # the timestamp and 13 amounts: then pool, user
    body = body[:at] + pool + user + body[at + 64 :]
    body += struct.pack("<QQ", 30, 3)
    if name == "BuyEvent":
        body += struct.pack("<BQQQqQ", 1, 0, 0, 0, 0, 0) + struct.pack("<I", 6) + b"buy_v2"
    body += struct.pack("<QQQQ", 0, 0, 0, 0)
    body += virtual_quote.to_bytes(16, "little", signed=True) + struct.pack("<BQQQQ", 0, 10**15, 0, 0, 0)
    return body


def migration(mint: bytes, pool: bytes) -> bytes:
    amounts = struct.pack("<QQQ", 10, 85_000_000_000, 15_000_000)
    return key(1) + mint + amounts + key(3) + struct.pack("<q", 1) + pool + SOL


def create_pool(index: int, mint: bytes, pool: bytes) -> bytes:
    body = struct.pack("<qH", 1, index) + key(0x20) + mint + key(0x21) + struct.pack("<BB", 6, 9)
    body += struct.pack("<QQQQQQQ", 1, 2, 3, 4, 5, 6, 7) + b"\xfe" + pool + key(0x22) + key(0x23) + key(0x24)
    return body + key(0x25) + b"\x00\x00"


def test_pumpswap_trades_of_a_graduated_coin_are_trades_of_its_mint() -> None:
    pools = PoolBook()
    mint, pool = key(0x30), key(0x31)
    graduation = invoked(PROGRAM_ID, line("CompletePumpAmmMigrationEvent", migration(mint, pool)))
    graduation[1:1] = invoked(PUMPSWAP_PROGRAM_ID, line("CreatePoolEvent", create_pool(0, mint, pool)))
    (migrated,) = events(run(graduation, pools=pools))
    assert migrated.kind == "migration" and migrated.mint == b58(mint)
    buy = amm_trade("BuyEvent", pool, key(0x40), 2_000_000, 500_000_000, virtual_quote=-20_000_000_000)
    sell = amm_trade("SellEvent", pool, key(0x41), 1_000_000, 90_000_000)
    out = run(invoked(PUMPSWAP_PROGRAM_ID, line("BuyEvent", buy), line("SellEvent", sell)), pools=pools)
    first, second = events(out)
    assert (first.side, second.side) == ("buy", "sell")
    assert first.mint == second.mint == b58(mint) and first.venue == second.venue == "pumpswap"
    assert (first.trader, first.token_amount, first.sol_amount) == (b58(key(0x40)), 2.0, 0.5)
    assert (second.token_amount, second.sol_amount) == (1.0, 0.09)
    # effective reserves: the quote vault plus the (negative) virtual quote reserves
    assert first.price_sol == ((100_000_000_000 - 20_000_000_000) / 1e9) / (1_000_000_000_000 / 1e6)
    assert first.raw["virtual_quote_reserves"] == -20_000_000_000 and first.raw["pool"] == b58(pool)
    assert first.raw["ix_name"] == "buy_v2"
    # a mint filter follows the coin across the graduation
    only = run(invoked(PUMPSWAP_PROGRAM_ID, line("BuyEvent", buy)), {"trades": {"mints": [b58(mint)]}}, pools)
    assert len(events(only)) == 1


def test_other_pools_only_on_request_and_unknown_pools_counted() -> None:
    pools = PoolBook()
    mint, pool = key(0x50), key(0x51)
    run(invoked(PUMPSWAP_PROGRAM_ID, line("CreatePoolEvent", create_pool(3, mint, pool))), pools=pools)
    buy = line("BuyEvent", amm_trade("BuyEvent", pool, key(0x40), 1, 1))
    assert run(invoked(PUMPSWAP_PROGRAM_ID, buy), pools=pools) == [Dropped("other_pool")]
    (trade,) = events(run(invoked(PUMPSWAP_PROGRAM_ID, buy), {"trades": {"pools": "all"}}, pools))
    assert trade.mint == b58(mint) and trade.raw["graduation_pool"] is False
    stranger = line("BuyEvent", amm_trade("BuyEvent", key(0x60), key(0x40), 1, 1))
    assert run(invoked(PUMPSWAP_PROGRAM_ID, stranger), pools=pools) == [Dropped("unknown_pool")]


def test_a_pool_trade_whose_fee_tail_drifted_keeps_its_pool_and_amounts() -> None:
    """The coin creator's fee basis points sit in one fixed-size run with the pool, the user and the
    amounts: implausible there (past the relied-on fields), the trade still comes, with those."""
    pools = PoolBook()
    mint, pool = key(0x70), key(0x71)
    graduation = invoked(PROGRAM_ID, line("CompletePumpAmmMigrationEvent", migration(mint, pool)))
    run(graduation, pools=pools)
    sell = amm_trade("SellEvent", pool, key(0x41), 1_000_000, 90_000_000)
    bps = 8 + 13 * 8 + 7 * 32  # coin_creator_fee_basis_points: after the amounts and the seven keys
    assert sell[bps : bps + 8] == struct.pack("<Q", 30)
    drifted = sell[:bps] + struct.pack("<Q", 10_001) + sell[bps + 8 :]
    (trade,) = events(run(invoked(PUMPSWAP_PROGRAM_ID, line("SellEvent", drifted)), pools=pools))
    assert trade.raw["decode_drift"] == "implausible_bps" and "coin_creator_fee_basis_points" not in trade.raw
    assert (trade.mint, trade.trader, trade.token_amount) == (b58(mint), b58(key(0x41)), 1.0)
    assert trade.raw["pool"] == b58(pool)


def test_the_pool_book_is_bounded() -> None:
    pools = PoolBook(limit=3)
    for n in range(10):
        pools.learn(f"pool{n}", f"mint{n}", graduated=True)
    assert len(pools) == 3 and pools.get("pool0") is None and pools.get("pool9") == ("mint9", True, None)


def test_the_dialect_follows_pumpswap_only_for_trades() -> None:
    import json

    dialect = Solana(0, [Subscription("creations")])
    frame, _clock = dialect.on_open()  # logsSubscribe, then slotSubscribe (the data clock)
    out = dialect.receive(json.dumps({"jsonrpc": "2.0", "result": 1, "id": json.loads(frame)["id"]}), 0)
    assert len(out) == 1  # Subscribed only: no PumpSwap subscription for launches
    (amm,) = dialect.subscribe(Subscription("trades"))
    assert json.loads(amm)["params"][0] == {"mentions": [PUMPSWAP_PROGRAM_ID]}


def test_a_pool_quoted_in_usdc_gives_no_sol_figures() -> None:
    usdc = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
    pools = PoolBook()
    pools.learn(b58(key(0x70)), b58(key(0x71)), graduated=True, quote=usdc)
    buy = line("BuyEvent", amm_trade("BuyEvent", key(0x70), key(0x40), 2_000_000, 5_000_000))
    (trade,) = events(run(invoked(PUMPSWAP_PROGRAM_ID, buy), pools=pools))
    assert trade.sol_amount is None and trade.price_sol is None and trade.token_amount == 2.0
    assert trade.raw["quote_mint"] == usdc and trade.raw["user_quote_amount_in"] == 5_000_000  # USDC units
