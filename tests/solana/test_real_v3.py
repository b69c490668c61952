"""Real curve-completing buys after the 2026-10-08 redeploy (fixtures/v3_completing_2026_10_09.json,
SOURCES.md): a buy_v3 whose second part the pool filled (TradeEvent, CompleteEvent,
PostCompleteBuyEvent) and a plain completing buy, field by field, through the live logs path and
through the event CPIs (as a cut log is recovered)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from pumpsync.events import Event
from pumpsync.providers._borsh import b58decode, decode_program_data
from pumpsync.providers.solana import (
    INNER,
    PROGRAM_ID,
    Instruction,
    PoolBook,
    compile_filters,
    decode_logs,
    decode_transaction,
)

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "v3_completing_2026_10_09.json").read_text())
SYNTHETIC, PLAIN = FIXTURE["txs"]
EVERY = compile_filters({"creations": {}, "trades": {}, "graduations": {}})


def logs_of(tx: dict[str, Any]) -> list[str]:
    return [f"Program {PROGRAM_ID} invoke [1]", *tx["program_data_lines"], f"Program {PROGRAM_ID} success"]


def decoded(line: str) -> Any:
    return decode_program_data(line.removeprefix("Program data: "))


def run(tx: dict[str, Any]) -> list[Event]:
    out: list[Any] = []
    decode_logs(logs_of(tx), tx["signature"], tx["slot"], 0, 0, False, EVERY, out, PoolBook())
    assert all(isinstance(o, Event) for o in out), out  # nothing unknown, undecodable or dropped
    return out


def test_what_the_source_asserts() -> None:
    for tx in FIXTURE["txs"]:
        assert tx["slot"] >= 454_596_459 and not tx["logs_truncated"]  # after the redeploy, whole logs
        names = [decoded(line).event for line in tx["program_data_lines"]]
        assert ("PostCompleteBuyEvent" in names) is tx["synthetic"]


def test_every_byte_of_the_october_layouts_is_read() -> None:
    """The 2026-10 TradeEvent (with holder_rewards_bps, holder_rewards, creator_fee_unclaimed) and the
    224-byte PostCompleteBuyEvent: read to their last byte, no drift."""
    sizes = [len(base64.b64decode(line.removeprefix("Program data: "))) for line in SYNTHETIC["program_data_lines"]]
    assert sizes == [8 + 389, 8 + 136, 8 + 224]
    trade, complete, post = (decoded(line) for line in SYNTHETIC["program_data_lines"])
    assert (trade.drift, complete.drift, post.drift) == (None, None, None)
    assert trade.fields["creator_fee_unclaimed"] == 41_201_679 and trade.fields["holder_rewards_bps"] == 0
    assert trade.fields["ix_name"] == "buy_exact_quote_in" and trade.fields["quote_mint"] == "1" * 32
    assert post.fields == {
        "user": "12TkMFY9UyFYJb6mcXMPdJjXdc6BVMp92g4ekj5fNvUm",
        "mint": SYNTHETIC["mint"],
        "bonding_curve": "BkidX3qayxCaM7S6y5d1nifJ8Z9KsazEX6kTbAdtkz7E",
        "quote_mint": "1" * 32,
        "timestamp": 1_791_530_008,
        "base_out": 46_463_173_329,
        "quote_in": 19_090_426,
        "fee_basis_points": 95,
        "fee": 181_360,
        "creator_fee_basis_points": 30,
        "creator_fee": 57_272,
        "buyback_fee": 90_680,
        "pool_base_reserves_before": 206_900_000_000_000,
        "pool_quote_reserves_before": 84_990_362_211,
        "pool_base_reserves_after": 206_853_536_826_671,
        "pool_quote_reserves_after": 85_009_452_637,
    }
    # the pool's reserves moved by exactly the part it filled (tokens out; lamports in, fees apart)
    assert post.fields["pool_base_reserves_before"] - post.fields["pool_base_reserves_after"] == 46_463_173_329


def test_a_real_buy_v3_is_one_trade_with_the_buyers_whole_amounts() -> None:
    trade, graduation = run(SYNTHETIC)
    assert (trade.kind, graduation.kind) == ("trade", "graduation")
    assert trade.mint == graduation.mint == SYNTHETIC["mint"] and trade.signature == SYNTHETIC["signature"]
    assert trade.trader == graduation.trader == "12TkMFY9UyFYJb6mcXMPdJjXdc6BVMp92g4ekj5fNvUm"
    assert trade.raw["sol_amount"] == 465_127 and trade.raw["post_complete_buy"]["quote_in"] == 19_090_426
    assert trade.sol_amount == (465_127 + 19_090_426) / 1e9
    assert trade.token_amount == (1_132_030_466 + 46_463_173_329) / 1e6
    assert trade.side == "buy" and trade.venue == "curve" and trade.timestamp == 1_791_530_008_000


def test_a_real_plain_completing_buy_is_left_as_it_is() -> None:
    trade, graduation = run(PLAIN)
    assert "post_complete_buy" not in trade.raw and trade.raw["ix_name"] == "buy"
    assert (trade.raw["sol_amount"], trade.raw["token_amount"]) == (297_681_982, 726_378_458_644)
    assert trade.trader == "YARSciE3tFureJbF9YmeBSxY946V24DmeKhuV3AoyXW" and graduation.mint == PLAIN["mint"]


def test_the_event_cpis_give_the_same_events_as_the_logs() -> None:
    """A cut log (here: the real log, cut before its events) is recovered from the emit_cpi
    instructions: the same three events, joined the same way."""
    instructions = [Instruction(c["program"], (), b58decode(c["data"])) for c in SYNTHETIC["emit_cpi_inner"]]
    out: list[Any] = []
    cut = [f"Program {PROGRAM_ID} invoke [1]", "Program log: Instruction: BuyV3", "Log truncated"]
    source = decode_transaction(cut, instructions, SYNTHETIC["signature"], SYNTHETIC["slot"], 0, 0, False, EVERY, out)
    assert source == INNER
    assert out == run(SYNTHETIC)
