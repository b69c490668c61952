"""Real mainnet PumpSwap transactions (fixtures/SOURCES.md): two layout generations, decoded to the
values their sources state, and through the dialect into trades of the pool's mint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pumpsync.events import Event
from pumpsync.providers._borsh import decode_program_data
from pumpsync.providers.base import Dropped
from pumpsync.providers.solana import PoolBook, compile_filters, decode_logs

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def run(logs: list[str], pools: PoolBook, every_pool: bool = True) -> list[Any]:
    out: list[Any] = []
    filters = compile_filters({"trades": {"pools": "all"} if every_pool else {}})
    decode_logs(logs, "SIG", 1, 2, 0, False, filters, out, pools=pools)
    return out


def test_a_september_2026_buy_decodes_to_its_sources_values() -> None:
    """481 bytes: the IDL's fields, then virtual_quote_reserves (i128), can_boost, base_supply,
    holder_rewards_bps, holder_rewards: every byte consumed, nothing implausible."""
    fx = load("pumpswap_buy_2026_09_24.json")
    expected = fx["source_asserts"]
    (line,) = [x for x in fx["logMessages"] if x.startswith("Program data: ")]
    decoded = decode_program_data(line.removeprefix("Program data: "), "pump_amm")
    assert not isinstance(decoded, str) and decoded is not None and decoded.drift is None
    f = decoded.fields
    assert (f["pool"], f["user"]) == (expected["pool"], expected["wallet"])
    assert (f["quote_amount_in"], f["base_amount_out"]) == (expected["amount"], expected["tokens"])
    assert f["timestamp"] == expected["market_time"]
    assert (f["pool_base_token_reserves"], f["pool_quote_token_reserves"]) == (
        expected["pool_base_reserve"],
        expected["pool_quote_reserve"],
    )
    assert f["user_quote_amount_in"] == expected["user_quote_amount"]
    assert f["ix_name"] == "buy" and f["virtual_quote_reserves"] == 17_584_505_288 and f["can_boost"] is True
    assert (f["base_supply"], f["holder_rewards_bps"], f["holder_rewards"]) == (999_402_810_489_575, 0, 0)
    assert "creator_fee_unclaimed" not in f  # appended 2026-10-08, after this trade


def test_the_september_2026_buy_as_a_trade() -> None:
    fx = load("pumpswap_buy_2026_09_24.json")
    pools = PoolBook()
    assert run(fx["logMessages"], pools) == [Dropped("unknown_pool")]  # the logs alone do not name the mint
    mint = "MintOfThePoolAsItsCreatePoolEventWouldSay1111"
    pools.learn(fx["source_asserts"]["pool"], mint, graduated=True)
    (trade,) = [o for o in run(fx["logMessages"], pools, every_pool=False) if isinstance(o, Event)]
    assert (trade.kind, trade.side, trade.venue, trade.mint) == ("trade", "buy", "pumpswap", mint)
    assert trade.trader == fx["source_asserts"]["wallet"]
    assert trade.sol_amount == 462_469 / 1e9  # what the buyer paid, fees included (user_quote_amount_in)
    assert trade.token_amount == 141_859_566 / 1e6
    effective = 220_693_325_181 + 17_584_505_288  # the quote vault plus the virtual quote reserves
    assert trade.price_sol == (effective / 1e9) / (73_894_701_580_072 / 1e6)
    assert trade.timestamp == 1_790_263_976_000


def test_a_december_2025_sell_and_buy_short_layouts() -> None:
    """An arbitrage round trip of 2025-12-16 (slot 387020561): the SellEvent ends at coin_creator_fee
    (360 bytes), the BuyEvent at ix_name (408): older layouts, decoded as far as they go."""
    fx = load("pumpswap_sell_buy_2025_12.json")
    logs = fx["transaction"]["meta"]["logMessages"]
    pools = PoolBook()
    pool, mint = "5Jrjc6w2UEGxFYfnyvvX9VdEovXyJkCaXwFXo525za8x", "Ejw8VHkEpehDMEYBroqhqWJdy7BFQhjig8AdNMjAgxUd"
    balances = fx["transaction"]["meta"]["postTokenBalances"]
    assert any(b["owner"] == pool and b["mint"] == mint for b in balances)  # the pool holds the base mint
    pools.learn(pool, mint, graduated=False)
    assert run(logs, pools, every_pool=False) == [Dropped("other_pool"), Dropped("other_pool")]
    sell, buy = [o for o in run(logs, pools) if isinstance(o, Event)]
    assert (sell.side, buy.side) == ("sell", "buy") and sell.mint == buy.mint == mint
    assert sell.trader == "HgZDiuJBz4D5MLMvG3hm2bHQ9UvSyiAJmxXnoncWvmQB"
    assert sell.token_amount == 4_130_787_582 / 1e6 and sell.sol_amount == 3_602_082_338_923 / 1e9
    assert buy.trader == "CqJviA1TaBWWnkX515NthiykyA42a5hyXrEgLXoSZM5R"
    assert buy.token_amount == 3_196_010_968 / 1e6 and buy.sol_amount == 2_801_220_511_879 / 1e9
    assert "virtual_quote_reserves" not in sell.raw and buy.raw["ix_name"] == "buy"
    assert "decode_drift" not in sell.raw and "decode_drift" not in buy.raw
