"""The pump.fun program's and PumpSwap's events, as a declarative table: one entry per event, fields
in order, names and types as in the programs' IDLs (``pump-fun/pump-public-docs``, ``idl/pump.json``
and ``idl/pump_amm.json``) plus what the 2026-09/10 upgrades appended (``tests/solana/fixtures/
SOURCES.md`` says where each comes from). Compiled and read by ``_borsh``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Field types: IDL primitives, or a vector of a struct given as its own field list.
Field = tuple[str, "str | Vec"]


@dataclass(frozen=True)
class Vec:
    """``vec<struct>``: a u32 count, then the items."""

    item: tuple[Field, ...]


@dataclass(frozen=True)
class Layout:
    name: str  # the IDL's event name
    discriminator: str  # hex: sha256("event:<name>")[:8]
    fields: tuple[Field, ...]
    required: int  # fewer whole fields than this is no event at all (normalization needs them)
    # The fields normalization relies on: every field past them is checked for plausibility (layout
    # drift), and an event whose tail does not fit keeps only these. 0: all of them.
    relied: int = 0
    program: str = "pump"  # "pump" (the bonding curve) or "pump_amm" (PumpSwap)


_SHAREHOLDER = Vec((("address", "pubkey"), ("share_bps", "u16")))
# PumpSwap Buy/SellEvent end alike: the fees, then the 2026-09/10 appendix.
_AMM_TAIL: tuple[Field, ...] = (
    ("cashback_fee_basis_points", "u64"),
    ("cashback", "u64"),
    ("buyback_fee_basis_points", "u64"),
    ("buyback_fee", "u64"),
    ("virtual_quote_reserves", "i128"),  # signed: may be negative
    ("can_boost", "bool"),
    ("base_supply", "u64"),
    ("holder_rewards_bps", "u64"),
    ("holder_rewards", "u64"),
    ("creator_fee_unclaimed", "u64"),
)

# IDL of pump-fun/pump-public-docs at 1b822158 (May 2026); the event table of free-sources.md agrees.
LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "CreateEvent",
        "1b72a94ddeeb6376",
        (
            ("name", "string"),
            ("symbol", "string"),
            ("uri", "string"),
            ("mint", "pubkey"),
            ("bonding_curve", "pubkey"),
            ("user", "pubkey"),
            ("creator", "pubkey"),
            ("timestamp", "i64"),
            ("virtual_token_reserves", "u64"),
            ("virtual_sol_reserves", "u64"),
            ("real_token_reserves", "u64"),
            ("token_total_supply", "u64"),
            ("token_program", "pubkey"),
            ("is_mayhem_mode", "bool"),
            ("is_cashback_enabled", "bool"),
            ("quote_mint", "pubkey"),
            ("virtual_quote_reserves", "u64"),
            # 2026-09-15 (create_v2, holder-reward coins)
            ("creator_fee_bps", "u64"),
            ("is_holder_reward", "bool"),
            # 2026-10-08 (coins quoted in another pump coin): the curve's depth (width per SOURCES.md)
            ("depth", "u8"),
        ),
        required=4,  # up to the mint
        relied=10,  # up to the virtual reserves: fixed offsets after the three strings
    ),
    Layout(
        "TradeEvent",
        "bddb7fd34ee661ee",
        (
            ("mint", "pubkey"),
            ("sol_amount", "u64"),
            ("token_amount", "u64"),
            ("is_buy", "bool"),
            ("user", "pubkey"),
            ("timestamp", "i64"),
            ("virtual_sol_reserves", "u64"),
            ("virtual_token_reserves", "u64"),
            ("real_sol_reserves", "u64"),
            ("real_token_reserves", "u64"),
            ("fee_recipient", "pubkey"),
            ("fee_basis_points", "u64"),
            ("fee", "u64"),
            ("creator", "pubkey"),
            ("creator_fee_basis_points", "u64"),
            ("creator_fee", "u64"),
            ("track_volume", "bool"),
            ("total_unclaimed_tokens", "u64"),
            ("total_claimed_tokens", "u64"),
            ("current_sol_volume", "u64"),
            ("last_update_timestamp", "i64"),
            ("ix_name", "string"),
            ("mayhem_mode", "bool"),
            ("cashback_fee_basis_points", "u64"),
            ("cashback", "u64"),
            ("buyback_fee_basis_points", "u64"),
            ("buyback_fee", "u64"),
            ("shareholders", _SHAREHOLDER),
            ("quote_mint", "pubkey"),
            ("quote_amount", "u64"),
            ("virtual_quote_reserves", "u64"),
            ("real_quote_reserves", "u64"),
            # 2026-09-15 (holder-reward coins)
            ("holder_rewards_bps", "u64"),
            ("holder_rewards", "u64"),
            # 2026-10-08 (trade v3)
            ("creator_fee_unclaimed", "u64"),
        ),
        required=5,  # up to the user: mint, amounts, side
        relied=21,  # up to last_update_timestamp: fixed offsets; ix_name and all after it are checked
    ),
    Layout(
        "CompleteEvent",
        "5f72619cd42e9808",
        (
            ("user", "pubkey"),
            ("mint", "pubkey"),
            ("bonding_curve", "pubkey"),
            ("timestamp", "i64"),
            ("quote_mint", "pubkey"),
        ),
        required=2,
    ),
    Layout(
        "CompletePumpAmmMigrationEvent",
        "bde95db95c94ea94",
        (
            ("user", "pubkey"),
            ("mint", "pubkey"),
            ("mint_amount", "u64"),
            ("sol_amount", "u64"),
            ("pool_migration_fee", "u64"),
            ("bonding_curve", "pubkey"),
            ("timestamp", "i64"),
            ("pool", "pubkey"),
            ("quote_mint", "pubkey"),
        ),
        required=2,
    ),
    # 2026-10-08: the part of a curve-completing v3 buy that the future pool filled (after the
    # TradeEvent and the CompleteEvent of the same transaction). Fixed size, 224 bytes.
    Layout(
        "PostCompleteBuyEvent",
        "6fb06d8b316cd5fb",
        (
            ("user", "pubkey"),
            ("mint", "pubkey"),
            ("bonding_curve", "pubkey"),
            ("quote_mint", "pubkey"),
            ("timestamp", "i64"),
            ("base_out", "u64"),
            ("quote_in", "u64"),
            ("fee_basis_points", "u64"),
            ("fee", "u64"),
            ("creator_fee_basis_points", "u64"),
            ("creator_fee", "u64"),
            ("buyback_fee", "u64"),
            ("pool_base_reserves_before", "u64"),
            ("pool_quote_reserves_before", "u64"),
            ("pool_base_reserves_after", "u64"),
            ("pool_quote_reserves_after", "u64"),
        ),
        required=7,  # up to quote_in
    ),
    # 2026-09-30 / 10-08: fees kept in the curve (or the pool) paid out: a fee payout, not a trade.
    Layout(
        "SweepBondingCurveFeeEvent",
        "742b4dbd117a482b",
        (
            ("timestamp", "i64"),
            ("mint", "pubkey"),
            ("bonding_curve", "pubkey"),
            ("quote_mint", "pubkey"),
            ("recipient", "pubkey"),
            ("amount", "u64"),
            ("bucket", "u8"),  # 0 protocol, 1 creator
        ),
        required=6,
    ),
    # ---- PumpSwap (pump_amm), IDL of pump-fun/pump-public-docs at 1b822158 plus the 2026-09/10 tails
    Layout(
        "BuyEvent",
        "67f4521f2cf57777",
        (
            ("timestamp", "i64"),
            ("base_amount_out", "u64"),
            ("max_quote_amount_in", "u64"),
            ("user_base_token_reserves", "u64"),
            ("user_quote_token_reserves", "u64"),
            ("pool_base_token_reserves", "u64"),
            ("pool_quote_token_reserves", "u64"),
            ("quote_amount_in", "u64"),
            ("lp_fee_basis_points", "u64"),
            ("lp_fee", "u64"),
            ("protocol_fee_basis_points", "u64"),
            ("protocol_fee", "u64"),
            ("quote_amount_in_with_lp_fee", "u64"),
            ("user_quote_amount_in", "u64"),
            ("pool", "pubkey"),
            ("user", "pubkey"),
            ("user_base_token_account", "pubkey"),
            ("user_quote_token_account", "pubkey"),
            ("protocol_fee_recipient", "pubkey"),
            ("protocol_fee_recipient_token_account", "pubkey"),
            ("coin_creator", "pubkey"),
            ("coin_creator_fee_basis_points", "u64"),
            ("coin_creator_fee", "u64"),
            ("track_volume", "bool"),
            ("total_unclaimed_tokens", "u64"),
            ("total_claimed_tokens", "u64"),
            ("current_sol_volume", "u64"),
            ("last_update_timestamp", "i64"),
            ("min_base_amount_out", "u64"),
            ("ix_name", "string"),
            *_AMM_TAIL,
        ),
        required=16,  # up to the user
        relied=21,  # up to coin_creator: fixed offsets
        program="pump_amm",
    ),
    Layout(
        "SellEvent",
        "3e2f370aa503dc2a",
        (
            ("timestamp", "i64"),
            ("base_amount_in", "u64"),
            ("min_quote_amount_out", "u64"),
            ("user_base_token_reserves", "u64"),
            ("user_quote_token_reserves", "u64"),
            ("pool_base_token_reserves", "u64"),
            ("pool_quote_token_reserves", "u64"),
            ("quote_amount_out", "u64"),
            ("lp_fee_basis_points", "u64"),
            ("lp_fee", "u64"),
            ("protocol_fee_basis_points", "u64"),
            ("protocol_fee", "u64"),
            ("quote_amount_out_without_lp_fee", "u64"),
            ("user_quote_amount_out", "u64"),
            ("pool", "pubkey"),
            ("user", "pubkey"),
            ("user_base_token_account", "pubkey"),
            ("user_quote_token_account", "pubkey"),
            ("protocol_fee_recipient", "pubkey"),
            ("protocol_fee_recipient_token_account", "pubkey"),
            ("coin_creator", "pubkey"),
            ("coin_creator_fee_basis_points", "u64"),
            ("coin_creator_fee", "u64"),
            *_AMM_TAIL,
        ),
        required=16,
        relied=21,
        program="pump_amm",
    ),
    Layout(
        "CreatePoolEvent",
        "b1310cd2a076a774",
        (
            ("timestamp", "i64"),
            ("index", "u16"),
            ("creator", "pubkey"),
            ("base_mint", "pubkey"),
            ("quote_mint", "pubkey"),
            ("base_mint_decimals", "u8"),
            ("quote_mint_decimals", "u8"),
            ("base_amount_in", "u64"),
            ("quote_amount_in", "u64"),
            ("pool_base_amount", "u64"),
            ("pool_quote_amount", "u64"),
            ("minimum_liquidity", "u64"),
            ("initial_liquidity", "u64"),
            ("lp_token_amount_out", "u64"),
            ("pool_bump", "u8"),
            ("pool", "pubkey"),
            ("lp_mint", "pubkey"),
            ("user_base_token_account", "pubkey"),
            ("user_quote_token_account", "pubkey"),
            ("coin_creator", "pubkey"),
            ("is_mayhem_mode", "bool"),
            ("is_holder_reward", "bool"),
        ),
        required=16,  # up to the pool
        program="pump_amm",
    ),
    Layout(
        "SweepPoolFeeEvent",
        "82a42461e48287a5",
        (
            ("timestamp", "i64"),
            ("pool", "pubkey"),
            ("base_mint", "pubkey"),
            ("quote_mint", "pubkey"),
            ("recipient", "pubkey"),
            ("payer", "pubkey"),
            ("amount", "u64"),
            ("bucket", "u8"),
        ),
        required=7,
        program="pump_amm",
    ),
)

# The IDL's other events: real, expected in the logs, not turned into pumpsync events. They are
# skipped quietly; only discriminators that are in no IDL count as "unknown_event".
OTHER_EVENTS = (
    "AdminSetCreatorEvent",
    "AdminSetIdlAuthorityEvent",
    "AdminUpdateTokenIncentivesEvent",
    "ClaimCashbackEvent",
    "ClaimTokenIncentivesEvent",
    "CloseUserVolumeAccumulatorEvent",
    "CollectCreatorFeeEvent",
    "DistributeCreatorFeesEvent",
    "ExtendAccountEvent",
    "InitUserVolumeAccumulatorEvent",
    "MigrateBondingCurveCreatorEvent",
    "MinimumDistributableFeeEvent",
    "ReservedFeeRecipientsEvent",
    "SetCreatorEvent",
    "SetMetaplexCreatorEvent",
    "SetParamsEvent",
    "SyncUserVolumeAccumulatorEvent",
    "UpdateGlobalAuthorityEvent",
    "UpdateMayhemVirtualParamsEvent",
)


# PumpSwap's other events (pump-public-docs idl/pump_amm.json at 1b822158): skipped quietly too.
OTHER_AMM_EVENTS = (
    "AdminSetCoinCreatorEvent",
    "AdminUpdateTokenIncentivesEvent",
    "ClaimCashbackEvent",
    "ClaimTokenIncentivesEvent",
    "CloseUserVolumeAccumulatorEvent",
    "CollectCoinCreatorFeeEvent",
    "CreateConfigEvent",
    "DepositEvent",
    "DisableEvent",
    "ExtendAccountEvent",
    "InitUserVolumeAccumulatorEvent",
    "MigratePoolCoinCreatorEvent",
    "ReservedFeeRecipientsEvent",
    "SetBondingCurveCoinCreatorEvent",
    "SetMetaplexCoinCreatorEvent",
    "SyncUserVolumeAccumulatorEvent",
    "UpdateAdminEvent",
    "UpdateFeeConfigEvent",
    "WithdrawEvent",
)
