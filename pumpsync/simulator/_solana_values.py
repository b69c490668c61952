"""The simulated Solana node's event values: what each pump.fun / PumpSwap event of a market event
holds (field names of the programs' IDLs), and the program addresses. Encoded by ``_solana_encode``
(which shares no code with pumpsync's decoder); put in transactions by ``_solana_calls``.
"""

from __future__ import annotations

from typing import Any

from pumpsync.simulator._solana_encode import (
    derived_key,
)
from pumpsync.simulator.market import (
    INITIAL_REAL_TOKENS,
    INITIAL_VIRTUAL_SOL,
    INITIAL_VIRTUAL_TOKENS,
    TOKEN_UNIT,
    TOTAL_SUPPLY_TOKENS,
    Graduation,
    Launch,
    Trade,
)

PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
SYSTEM = "11111111111111111111111111111111"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
ATA = "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL"
FEE_PROGRAM = "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ"
PUMP_AMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
MEMO = "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"
EVENT_AUTHORITY = "Ce6TQqeHC9p8KetsN6JsjHK7UTZk7nasjjnr7XxXp9F1"
GLOBAL = "4wTV1YmiEkRvAtNtsSGPtUrqRYQMe5SKy2uB4Jjaxnjf"
AMM_EVENT_AUTHORITY = "GS4CU59F31iL7aR2Q8zVS8DRrcRnXX1yjQ66TqNVQnaR"
QUOTE_SOL = SYSTEM  # quote_mint of SOL-paired coins
MIGRATION_AUTHORITY = derived_key("pump", "migration-authority")
FEE_RECIPIENTS = tuple(derived_key("pump", "fee-recipient", str(i)) for i in range(8))
# A wrapper program that logs a lot (the usual cause of "Log truncated").
ROUTER = derived_key("sim", "router-program")

LOG_LIMIT = 10_000  # bytes of log lines a validator keeps per transaction
FEE_BPS = 95
CREATOR_FEE_BPS = 30
POOL_MIGRATION_FEE = 15_000_001
PROGRAM_IDS = frozenset({PUMP, COMPUTE_BUDGET, SYSTEM, TOKEN, TOKEN_2022, ATA, FEE_PROGRAM, PUMP_AMM, MEMO, ROUTER})


# -- event values ------------------------------------------------------------------------


def bonding_curve(mint: str) -> str:
    return derived_key("bonding-curve", mint)


def _ceil_bps(amount: int, bps: int) -> int:
    return -(-amount * bps // 10_000)


def ix_name(trade: Trade) -> str:
    if trade.side == "sell":
        return "sell"
    return "buy_exact_sol_in" if int.from_bytes(trade.signature[-4:].encode(), "big") % 2 else "buy"


# The pump.fun-controlled address a holder-reward coin's CreateEvent names as ``creator`` (its developer
# is the event's ``user``), and the basis points of its trades paid to holders.
HOLDER_REWARD_CREATOR = derived_key("pump", "holder-reward-creator")
HOLDER_REWARDS_BPS = 10


def holder_reward(mint: str) -> bool:
    """One coin in six is a holder-reward coin (create_v2 with ``is_holder_reward``, 2026-09-15)."""
    return sum(mint.encode()) % 6 == 0


def create_values(launch: Launch, token_program: str) -> dict[str, Any]:
    token = launch.token
    rewards = holder_reward(token.mint)
    return {
        "name": token.name,
        "symbol": token.symbol,
        "uri": token.uri,
        "mint": token.mint,
        "bonding_curve": bonding_curve(token.mint),
        "user": token.creator,
        "creator": HOLDER_REWARD_CREATOR if rewards else token.creator,
        "timestamp": launch.timestamp // 1000,
        # The curve before the creator's first buy (that buy is the next event).
        "virtual_token_reserves": INITIAL_VIRTUAL_TOKENS,
        "virtual_sol_reserves": INITIAL_VIRTUAL_SOL,
        "real_token_reserves": INITIAL_REAL_TOKENS,
        "token_total_supply": TOTAL_SUPPLY_TOKENS * TOKEN_UNIT,
        "token_program": token_program,
        "is_mayhem_mode": token.mayhem_mode,
        "is_cashback_enabled": False,
        "quote_mint": QUOTE_SOL,
        "virtual_quote_reserves": INITIAL_VIRTUAL_SOL,
        "creator_fee_bps": CREATOR_FEE_BPS,
        "is_holder_reward": rewards,
        "depth": 0,  # quoted in SOL, not in another pump coin
    }


def trade_values(trade: Trade, creator: str, mayhem: bool) -> dict[str, Any]:
    curve, sol = trade.curve, trade.sol_lamports
    return {
        "mint": trade.mint,
        "sol_amount": sol,
        "token_amount": trade.token_raw,
        "is_buy": trade.side == "buy",
        "user": trade.trader,
        "timestamp": trade.timestamp // 1000,
        "virtual_sol_reserves": curve.virtual_sol,
        "virtual_token_reserves": curve.virtual_tokens,
        "real_sol_reserves": curve.real_sol,
        "real_token_reserves": curve.real_tokens,
        "fee_recipient": FEE_RECIPIENTS[sum(trade.signature.encode()) % len(FEE_RECIPIENTS)],
        "fee_basis_points": FEE_BPS,
        "fee": _ceil_bps(sol, FEE_BPS),
        "creator": creator,
        "creator_fee_basis_points": CREATOR_FEE_BPS,
        "creator_fee": _ceil_bps(sol, CREATOR_FEE_BPS),
        "track_volume": False,
        "total_unclaimed_tokens": 0,
        "total_claimed_tokens": 0,
        "current_sol_volume": 0,
        "last_update_timestamp": 0,
        "ix_name": ix_name(trade),
        "mayhem_mode": mayhem,
        "cashback_fee_basis_points": 0,
        "cashback": 0,
        "buyback_fee_basis_points": 0,
        "buyback_fee": 0,
        "shareholders": (),
        "quote_mint": QUOTE_SOL,
        "quote_amount": sol,
        "virtual_quote_reserves": curve.virtual_sol,
        "real_quote_reserves": curve.real_sol,
        "holder_rewards_bps": HOLDER_REWARDS_BPS if holder_reward(trade.mint) else 0,
        "holder_rewards": _ceil_bps(sol, HOLDER_REWARDS_BPS) if holder_reward(trade.mint) else 0,
        "creator_fee_unclaimed": 0,
    }


def post_complete_share(trade: Trade) -> tuple[int, int]:
    """The (tokens, lamports) of a curve-completing buy that the future pool fills under buy_v3
    (2026-10-08): a tenth of each; the TradeEvent carries the rest, so the two add up to the trade."""
    return trade.token_raw // 10, trade.sol_lamports // 10


def post_complete_values(trade: Trade) -> dict[str, Any]:
    tokens, lamports = post_complete_share(trade)
    pool_tokens, pool_sol = 206_900_000_000_000, max(trade.curve.real_sol, 1)
    return {
        "user": trade.trader,
        "mint": trade.mint,
        "bonding_curve": bonding_curve(trade.mint),
        "quote_mint": QUOTE_SOL,
        "timestamp": trade.timestamp // 1000,
        "base_out": tokens,
        "quote_in": lamports,
        "fee_basis_points": FEE_BPS,
        "fee": _ceil_bps(lamports, FEE_BPS),
        "creator_fee_basis_points": CREATOR_FEE_BPS,
        "creator_fee": _ceil_bps(lamports, CREATOR_FEE_BPS),
        "buyback_fee": 0,
        "pool_base_reserves_before": pool_tokens + tokens,
        "pool_quote_reserves_before": pool_sol - lamports,
        "pool_base_reserves_after": pool_tokens,
        "pool_quote_reserves_after": pool_sol,
    }


def sweeps(signature: str) -> bool:
    """One transaction in five also pays out fees kept in the curve or the pool (a sweep)."""
    return sum(signature.encode()) % 5 == 1


def curve_sweep_values(trade: Trade, creator: str) -> dict[str, Any]:
    return {
        "timestamp": trade.timestamp // 1000,
        "mint": trade.mint,
        "bonding_curve": bonding_curve(trade.mint),
        "quote_mint": QUOTE_SOL,
        "recipient": creator or FEE_RECIPIENTS[1],
        "amount": _ceil_bps(trade.sol_lamports, CREATOR_FEE_BPS),
        "bucket": 1 if creator else 0,  # 0 protocol, 1 creator
    }


def pool_sweep_values(trade: Trade, creator: str) -> dict[str, Any]:
    return {
        "timestamp": trade.timestamp // 1000,
        "pool": pool_of(trade.mint),
        "base_mint": trade.mint,
        "quote_mint": QUOTE_SOL,
        "recipient": FEE_RECIPIENTS[2],
        "payer": trade.trader,
        "amount": _ceil_bps(trade.sol_lamports, 5),
        "bucket": 0,
    }


def pool_of(mint: str) -> str:
    """The PumpSwap pool a graduation creates (named by the migration event)."""
    return derived_key("pump-amm-pool", mint)


def swap_values(trade: Trade, creator: str) -> dict[str, Any]:
    """A PumpSwap Buy/SellEvent of the 2026-10 layout; the market's fee is kept in the pool."""
    buy = trade.side == "buy"
    pool = pool_of(trade.mint)
    lp = _ceil_bps(trade.sol_lamports, 20)
    values: dict[str, Any] = {
        "timestamp": trade.timestamp // 1000,
        "user_base_token_reserves": 0,
        "user_quote_token_reserves": 0,
        "pool_base_token_reserves": trade.curve.virtual_tokens,
        "pool_quote_token_reserves": trade.curve.virtual_sol,
        "lp_fee_basis_points": 20,
        "lp_fee": lp,
        "protocol_fee_basis_points": 5,
        "protocol_fee": _ceil_bps(trade.sol_lamports, 5),
        "pool": pool,
        "user": trade.trader,
        "user_base_token_account": derived_key("ata", trade.trader, trade.mint),
        "user_quote_token_account": derived_key("ata", trade.trader, "wsol"),
        "protocol_fee_recipient": FEE_RECIPIENTS[0],
        "protocol_fee_recipient_token_account": derived_key("ata", FEE_RECIPIENTS[0], "wsol"),
        "coin_creator": creator or QUOTE_SOL,
        "coin_creator_fee_basis_points": 5,
        "coin_creator_fee": _ceil_bps(trade.sol_lamports, 5),
        "cashback_fee_basis_points": 0,
        "cashback": 0,
        "buyback_fee_basis_points": 0,
        "buyback_fee": 0,
        "virtual_quote_reserves": 0,
        "can_boost": False,
        "base_supply": TOTAL_SUPPLY_TOKENS * TOKEN_UNIT,
        "holder_rewards_bps": 0,
        "holder_rewards": 0,
        "creator_fee_unclaimed": 0,
    }
    if buy:
        values.update(
            base_amount_out=trade.token_raw,
            max_quote_amount_in=trade.sol_lamports * 2,
            quote_amount_in=trade.sol_lamports,
            quote_amount_in_with_lp_fee=trade.sol_lamports,
            user_quote_amount_in=trade.sol_lamports,
            track_volume=True,
            total_unclaimed_tokens=0,
            total_claimed_tokens=0,
            current_sol_volume=0,
            last_update_timestamp=trade.timestamp // 1000,
            min_base_amount_out=trade.token_raw,
            ix_name="buy_v2",
        )
    else:
        values.update(
            base_amount_in=trade.token_raw,
            min_quote_amount_out=0,
            quote_amount_out=trade.sol_lamports,
            quote_amount_out_without_lp_fee=trade.sol_lamports,
            user_quote_amount_out=trade.sol_lamports,
        )
    return values


def complete_values(user: str, grad: Graduation) -> dict[str, Any]:
    return {
        "user": user,
        "mint": grad.mint,
        "bonding_curve": bonding_curve(grad.mint),
        "timestamp": grad.timestamp // 1000,
        "quote_mint": QUOTE_SOL,
    }


def migration_values(grad: Graduation) -> dict[str, Any]:
    return {
        "user": MIGRATION_AUTHORITY,
        "mint": grad.mint,
        "mint_amount": TOTAL_SUPPLY_TOKENS * TOKEN_UNIT - INITIAL_REAL_TOKENS,
        "sol_amount": max(0, grad.curve.real_sol - POOL_MIGRATION_FEE),
        "pool_migration_fee": POOL_MIGRATION_FEE,
        "bonding_curve": bonding_curve(grad.mint),
        "timestamp": grad.timestamp // 1000,
        "pool": pool_of(grad.mint),
        "quote_mint": QUOTE_SOL,
    }
