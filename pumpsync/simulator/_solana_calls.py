"""The simulated node's transactions as call trees: which programs a market event's transaction
invokes, with which accounts, data, log lines and events (rendered by ``_solana_tx``).
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pumpsync.simulator._solana_encode import (
    LayoutName,
    derived_key,
    encode_event,
)
from pumpsync.simulator._solana_values import (
    ATA,
    COMPUTE_BUDGET,
    CREATOR_FEE_BPS,
    FEE_BPS,
    FEE_PROGRAM,
    FEE_RECIPIENTS,
    GLOBAL,
    LOG_LIMIT,
    MEMO,
    MIGRATION_AUTHORITY,
    PUMP,
    PUMP_AMM,
    QUOTE_SOL,
    ROUTER,
    SYSTEM,
    TOKEN,
    TOKEN_2022,
    _ceil_bps,
    bonding_curve,
    complete_values,
    create_values,
    curve_sweep_values,
    ix_name,
    migration_values,
    pool_of,
    pool_sweep_values,
    post_complete_share,
    post_complete_values,
    swap_values,
    sweeps,
    trade_values,
)
from pumpsync.simulator.market import (
    Graduation,
    Launch,
    Trade,
)

RecipeKind = Literal["launch", "trade", "migrate", "failed", "unknown_event", "undecodable", "swap"]
# Channels (the client's names) whose events a transaction carries.
KIND_CHANNELS: dict[str, tuple[str, ...]] = {
    "launch": ("creations",),
    "trade": ("trades",),
    "migrate": ("graduations",),
    "swap": ("trades",),  # a graduated token's PumpSwap trade
}


@dataclass(frozen=True)
class Recipe:
    """Everything a transaction's rendering depends on."""

    kind: RecipeKind
    signature: str
    slot: int
    block_time: int
    launch: Launch | None = None
    trade: Trade | None = None
    graduation: Graduation | None = None  # trade: CompleteEvent in this tx; migrate: the migration
    creator: str = ""  # the traded token's creator
    mayhem: bool = False
    layout: LayoutName = "current"
    truncated: bool = False
    pad_to: int = 0  # oversized: log bytes to reach (a memo instruction after the events)

    @property
    def failed(self) -> bool:
        return self.kind == "failed"

    @property
    def channels(self) -> tuple[str, ...]:
        channels = KIND_CHANNELS.get(self.kind, ())
        if self.kind == "launch" and self.trade is not None:
            channels += ("trades",)
        if self.kind == "trade" and self.graduation is not None:
            channels += ("graduations",)
        return channels

    @property
    def programs(self) -> tuple[str, ...]:
        """The programs whose ``mentions`` subscription (and address history) lists it."""
        if self.kind == "swap":
            return (PUMP_AMM,)
        return (PUMP, PUMP_AMM) if self.kind == "migrate" else (PUMP,)

    @property
    def err(self) -> dict[str, Any] | None:
        # A later instruction (index 3) failed: the pump instruction's logs are still there.
        return {"InstructionError": [3, {"Custom": 1}]} if self.failed else None


# -- call trees ----------------------------------------------------------------------------


@dataclass
class Call:
    """One program invocation: its log lines, nested calls and (pump) events, in order."""

    program: str
    body: list[str | Call | bytes] = field(default_factory=list)  # log line | CPI | event
    units: int | None = None  # None: prints no "consumed" line (the System program)
    accounts: tuple[str, ...] = ()
    data: bytes = b""
    ret: str | None = None
    fail: str | None = None


def _anchor_ix(name: str, *amounts: int) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8] + b"".join(struct.pack("<Q", a) for a in amounts)


def _log(text: str) -> str:
    return f"Program log: {text}"


def _system_transfer(src: str, dst: str, lamports: int) -> Call:
    return Call(SYSTEM, accounts=(src, dst), data=struct.pack("<IQ", 2, lamports))


def _token_call(program: str, name: str, units: int, accounts: tuple[str, ...], data: bytes = b"\x0c") -> Call:
    return Call(program, [_log(f"Instruction: {name}")], units, accounts, data)


def _ata_create(rng: random.Random, payer: str, owner: str, mint: str, token_program: str, idempotent: bool) -> Call:
    ata = derived_key("ata", owner, mint)
    return Call(
        ATA,
        [
            _log("CreateIdempotent" if idempotent else "Create"),
            Call(
                token_program,
                [_log("Instruction: GetAccountDataSize")],
                1500 + rng.randrange(50),
                (mint,),
                b"\x15",
                ret="qgAAAAAAAAA=",
            ),
            _system_transfer(payer, ata, 2_039_280),
            _log("Initialize the associated token account"),
            _token_call(token_program, "InitializeImmutableOwner", 736, (ata,), b"\x16"),
            _token_call(token_program, "InitializeAccount3", 2153, (ata, mint), b"\x12"),
        ],
        16_000 + rng.randrange(6000),
        (payer, ata, owner, mint, SYSTEM, token_program),
        b"\x01" if idempotent else b"",
    )


def compute_limit(signature: str) -> int:
    return 300_000 + 50_000 * (sum(signature.encode()) % 4)


def _compute_budget(rng: random.Random, limit: int) -> list[Call]:
    price = struct.pack("<BQ", 3, rng.randrange(10_000, 2_000_000))
    return [Call(COMPUTE_BUDGET, data=struct.pack("<BI", 2, limit)), Call(COMPUTE_BUDGET, data=price)]


def _noise(program: str, nbytes: int, label: str) -> Call:
    """A wrapper instruction logging about ``nbytes`` bytes of lines."""
    lines: list[str | Call | bytes] = []
    size, n = 0, 0
    while size < nbytes:
        line = _log(f"{label} {n}: " + "route-leg " * 90)
        lines.append(line)
        size += len(line)
        n += 1
    return Call(program, lines, 4000 + n)


def _trade_call(rng: random.Random, trade: Trade, events: list[bytes], token_program: str) -> Call:
    name = ix_name(trade)
    curve, user = bonding_curve(trade.mint), trade.trader
    user_ata, curve_ata = derived_key("ata", user, trade.mint), derived_key("ata", curve, trade.mint)
    fee_ret = base64.b64encode(struct.pack("<QQQ", 0, FEE_BPS, CREATOR_FEE_BPS)).decode()
    body: list[str | Call | bytes] = [
        _log(f"Instruction: {''.join(p.title() for p in name.split('_'))}"),
        Call(FEE_PROGRAM, [_log("Instruction: GetFees")], 3000 + rng.randrange(500), (GLOBAL,), b"\x01", fee_ret),
    ]
    if trade.side == "buy":
        body.append(_token_call(token_program, "TransferChecked", 2562, (curve_ata, trade.mint, user_ata, curve)))
        body.append(_system_transfer(user, curve, trade.sol_lamports))
        body.append(_system_transfer(user, FEE_RECIPIENTS[0], _ceil_bps(trade.sol_lamports, FEE_BPS)))
        body.append(_system_transfer(user, derived_key("creator-vault", trade.mint), 1))
    else:
        body.append(_token_call(token_program, "TransferChecked", 2562, (user_ata, trade.mint, curve_ata, user)))
    body.extend(events)
    args = (trade.token_raw, trade.sol_lamports)
    return Call(
        PUMP, body, 30_000 + rng.randrange(40_000), (GLOBAL, trade.mint, curve, user_ata, user), _anchor_ix(name, *args)
    )


def _create_call(rng: random.Random, launch: Launch, event: bytes, token_program: str) -> Call:
    mint, creator = launch.mint, launch.token.creator
    curve = bonding_curve(mint)
    v2 = token_program == TOKEN_2022
    body: list[str | Call | bytes] = [
        _log(f"Instruction: {'CreateV2' if v2 else 'Create'}"),
        _system_transfer(creator, mint, 1_461_600),
        _token_call(token_program, "InitializeMint2", 1772, (mint,), b"\x14"),
        _system_transfer(creator, curve, 1_844_400),
        _ata_create(rng, creator, curve, mint, token_program, idempotent=False),
        _token_call(token_program, "MintTo", 1714, (mint, derived_key("ata", curve, mint)), b"\x07"),
        _token_call(token_program, "SetAuthority", 1044, (mint,), b"\x06"),
        event,
    ]
    name = "create_v2" if v2 else "create"
    return Call(PUMP, body, 90_000 + rng.randrange(70_000), (mint, curve, creator, GLOBAL), _anchor_ix(name))


def _sweep_call(rng: random.Random, program: str, accounts: tuple[str, ...], event: bytes) -> Call:
    """A fee payout (sweep_fees): its own instruction after the trade, one event."""
    body: list[str | Call | bytes] = [_log("Instruction: SweepFees"), event]
    return Call(program, body, 12_000 + rng.randrange(3000), accounts, _anchor_ix("sweep_fees"))


def _token_program(recipe: Recipe) -> str:
    # Most launches are CreateV2 (Token-2022) since November 2025; some still use Create.
    return TOKEN if sum(recipe.signature.encode()) % 5 == 0 else TOKEN_2022


def calls_of(recipe: Recipe, rng: random.Random) -> list[Call]:
    """The transaction's top-level instructions, in order."""
    calls = _compute_budget(rng, compute_limit(recipe.signature))
    if recipe.truncated:
        calls.append(_noise(ROUTER, LOG_LIMIT + 500, "route"))
    build = _BUILDERS.get(recipe.kind)
    if build is not None:
        calls += build(recipe, rng)
    if recipe.pad_to:
        calls.append(_noise(MEMO, recipe.pad_to, "Memo (len 900)"))
    return calls


def _launch(recipe: Recipe, rng: random.Random) -> list[Call]:
    assert recipe.launch is not None
    program = _token_program(recipe)
    event = encode_event("CreateEvent", create_values(recipe.launch, program), recipe.layout)
    calls = [_create_call(rng, recipe.launch, event, program)]
    if recipe.trade is not None:
        trade = recipe.trade
        calls.append(_ata_create(rng, trade.trader, trade.trader, trade.mint, program, idempotent=True))
        event = encode_event("TradeEvent", trade_values(trade, recipe.creator, recipe.mayhem), recipe.layout)
        calls.append(_trade_call(rng, trade, [event], program))
    return calls


def _curve_trade(recipe: Recipe, rng: random.Random) -> list[Call]:
    assert recipe.trade is not None
    trade, layout = recipe.trade, recipe.layout
    values = trade_values(trade, recipe.creator, recipe.mayhem)
    # A buy that completes the curve, in the October 2026 layout: buy_v3's two parts.
    v3 = recipe.graduation is not None and trade.side == "buy" and layout == "current"
    if v3:
        tokens, lamports = post_complete_share(trade)
        values.update(token_amount=trade.token_raw - tokens, sol_amount=trade.sol_lamports - lamports)
        values.update(quote_amount=trade.sol_lamports - lamports, ix_name="buy_v3")
    events = [encode_event("TradeEvent", values, layout)]
    if recipe.graduation is not None:
        events.append(encode_event("CompleteEvent", complete_values(trade.trader, recipe.graduation), layout))
    if v3:
        events.append(encode_event("PostCompleteBuyEvent", post_complete_values(trade), layout))
    calls = []
    if trade.side == "buy":
        calls.append(_ata_create(rng, trade.trader, trade.trader, trade.mint, TOKEN_2022, idempotent=True))
    calls.append(_trade_call(rng, trade, events, TOKEN_2022))
    if layout == "current" and sweeps(recipe.signature):
        sweep = encode_event("SweepBondingCurveFeeEvent", curve_sweep_values(trade, recipe.creator))
        calls.append(_sweep_call(rng, PUMP, (bonding_curve(trade.mint), trade.mint), sweep))
    if recipe.kind == "failed":
        source = derived_key("ata", trade.trader, "tip")
        data = b"\x03" + struct.pack("<Q", 10**9)
        logs: list[str | Call | bytes] = [_log("Instruction: Transfer"), _log("Error: insufficient funds")]
        accounts = (source, derived_key("ata", "tip"), trade.trader)
        calls.append(Call(TOKEN, logs, 4381, accounts, data, fail="custom program error: 0x1"))
    return calls


def _migrate(recipe: Recipe, rng: random.Random) -> list[Call]:
    assert recipe.graduation is not None
    grad = recipe.graduation
    pool = derived_key("pump-amm-pool", grad.mint)
    amm = Call(
        PUMP_AMM,
        [_log("Instruction: CreatePool"), _system_transfer(MIGRATION_AUTHORITY, pool, 2_500_000)],
        60_000 + rng.randrange(10_000),
        (pool, grad.mint, MIGRATION_AUTHORITY),
        _anchor_ix("create_pool"),
    )
    event = encode_event("CompletePumpAmmMigrationEvent", migration_values(grad), recipe.layout)
    body: list[str | Call | bytes] = [_log("Instruction: Migrate"), amm, event]
    return [Call(PUMP, body, 120_000 + rng.randrange(20_000), (GLOBAL, grad.mint, pool), _anchor_ix("migrate"))]


def _swap(recipe: Recipe, rng: random.Random) -> list[Call]:
    """A graduated token's PumpSwap trade (buy_v2 / sell_v2)."""
    assert recipe.trade is not None
    trade = recipe.trade
    event = encode_event("BuyEvent" if trade.side == "buy" else "SellEvent", swap_values(trade, recipe.creator))
    pool = pool_of(trade.mint)
    user_ata, pool_ata = derived_key("ata", trade.trader, trade.mint), derived_key("ata", pool, trade.mint)
    body: list[str | Call | bytes] = [
        _log(f"Instruction: {'BuyV2' if trade.side == 'buy' else 'SellV2'}"),
        _token_call(TOKEN_2022, "TransferChecked", 2562, (pool_ata, trade.mint, user_ata, pool)),
        _token_call(TOKEN, "TransferChecked", 6238, (derived_key("ata", trade.trader, "wsol"), pool)),
        event,
    ]
    accounts = (pool, trade.trader, GLOBAL, trade.mint, QUOTE_SOL, user_ata)
    ix = _anchor_ix("buy_v2" if trade.side == "buy" else "sell_v2", trade.token_raw, trade.sol_lamports)
    calls = [Call(PUMP_AMM, body, 70_000 + rng.randrange(20_000), accounts, ix)]
    if sweeps(recipe.signature):
        sweep = encode_event("SweepPoolFeeEvent", pool_sweep_values(trade, recipe.creator))
        calls.append(_sweep_call(rng, PUMP_AMM, (pool, trade.mint), sweep))
    return calls


def _unknown_event(recipe: Recipe, rng: random.Random) -> list[Call]:
    """An IDL event no feed maps (a client counts it, never fails on it)."""
    assert recipe.trade is not None
    account = bonding_curve(recipe.trade.mint)
    values: dict[str, Any] = {
        "account": account,
        "user": recipe.trade.trader,
        "current_size": 150,
        "new_size": 250,
        "timestamp": recipe.block_time,
    }
    event = encode_event("ExtendAccountEvent", values)
    body: list[str | Call | bytes] = [
        _log("Instruction: ExtendAccount"),
        _system_transfer(recipe.trade.trader, account, 695_040),
        event,
    ]
    return [Call(PUMP, body, 9_000 + rng.randrange(1000), (account,), _anchor_ix("extend_account"))]


def _undecodable(recipe: Recipe, rng: random.Random) -> list[Call]:
    # Not base64, then shorter than a discriminator: what a client must count, not crash on.
    body: list[str | Call | bytes] = [_log("Instruction: Buy"), "Program data: !!not*base64!!", "Program data: AQID"]
    return [Call(PUMP, body, 5_000 + rng.randrange(1000), (GLOBAL,), _anchor_ix("buy"))]


_BUILDERS: dict[str, Callable[[Recipe, random.Random], list[Call]]] = {
    "launch": _launch,
    "trade": _curve_trade,
    "failed": _curve_trade,
    "migrate": _migrate,
    "swap": _swap,
    "unknown_event": _unknown_event,
    "undecodable": _undecodable,
}
