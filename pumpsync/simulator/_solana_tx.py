"""Market events as pump.fun transactions: log lines (as ``logsSubscribe`` streams them) and the
``getTransaction`` answer (encoding ``json``), both rendered from one call tree.

A transaction is kept as a small ``Recipe`` and rendered on demand: rendering is a pure
function of the recipe (per-transaction randomness is seeded by the signature), so the
history can hold many transactions cheaply and every rendering equals what was streamed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pumpsync.simulator._solana_encode import (
    CPI_EVENT_TAG,
    LayoutName,
    b58decode,
    b58encode,
    derived_key,
    derived_signature,
    encode_event,
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


# -- event values ------------------------------------------------------------------------


def bonding_curve(mint: str) -> str:
    return derived_key("bonding-curve", mint)


def _ceil_bps(amount: int, bps: int) -> int:
    return -(-amount * bps // 10_000)


def ix_name(trade: Trade) -> str:
    if trade.side == "sell":
        return "sell"
    return "buy_exact_sol_in" if int.from_bytes(trade.signature[-4:].encode(), "big") % 2 else "buy"


def create_values(launch: Launch, token_program: str) -> dict[str, Any]:
    token = launch.token
    return {
        "name": token.name,
        "symbol": token.symbol,
        "uri": token.uri,
        "mint": token.mint,
        "bonding_curve": bonding_curve(token.mint),
        "user": token.creator,
        "creator": token.creator,
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


def _token_program(recipe: Recipe) -> str:
    # Most launches are CreateV2 (Token-2022) since November 2025; some still use Create.
    return TOKEN if sum(recipe.signature.encode()) % 5 == 0 else TOKEN_2022


def _calls(recipe: Recipe, rng: random.Random) -> list[Call]:
    calls = _compute_budget(rng, compute_limit(recipe.signature))
    layout = recipe.layout
    if recipe.truncated:
        calls.append(_noise(ROUTER, LOG_LIMIT + 500, "route"))
    kind = recipe.kind
    if kind == "launch":
        assert recipe.launch is not None
        program = _token_program(recipe)
        event = encode_event("CreateEvent", create_values(recipe.launch, program), layout)
        calls.append(_create_call(rng, recipe.launch, event, program))
        if recipe.trade is not None:
            trade = recipe.trade
            calls.append(_ata_create(rng, trade.trader, trade.trader, trade.mint, program, idempotent=True))
            event = encode_event("TradeEvent", trade_values(trade, recipe.creator, recipe.mayhem), layout)
            calls.append(_trade_call(rng, trade, [event], program))
    elif kind in ("trade", "failed"):
        assert recipe.trade is not None
        trade = recipe.trade
        events = [encode_event("TradeEvent", trade_values(trade, recipe.creator, recipe.mayhem), layout)]
        if recipe.graduation is not None:
            events.append(encode_event("CompleteEvent", complete_values(trade.trader, recipe.graduation), layout))
        if trade.side == "buy":
            calls.append(_ata_create(rng, trade.trader, trade.trader, trade.mint, TOKEN_2022, idempotent=True))
        calls.append(_trade_call(rng, trade, events, TOKEN_2022))
        if kind == "failed":
            source = derived_key("ata", trade.trader, "tip")
            calls.append(
                Call(
                    TOKEN,
                    [_log("Instruction: Transfer"), _log("Error: insufficient funds")],
                    4381,
                    (source, derived_key("ata", "tip"), trade.trader),
                    b"\x03" + struct.pack("<Q", 10**9),
                    fail="custom program error: 0x1",
                )
            )
    elif kind == "migrate":
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
        event = encode_event("CompletePumpAmmMigrationEvent", migration_values(grad), layout)
        body: list[str | Call | bytes] = [_log("Instruction: Migrate"), amm, event]
        calls.append(
            Call(PUMP, body, 120_000 + rng.randrange(20_000), (GLOBAL, grad.mint, pool), _anchor_ix("migrate"))
        )
    elif kind == "swap":
        assert recipe.trade is not None
        trade = recipe.trade
        name = "BuyEvent" if trade.side == "buy" else "SellEvent"
        event = encode_event(name, swap_values(trade, recipe.creator))
        pool = pool_of(trade.mint)
        user_ata, pool_ata = derived_key("ata", trade.trader, trade.mint), derived_key("ata", pool, trade.mint)
        body = [
            _log(f"Instruction: {'BuyV2' if trade.side == 'buy' else 'SellV2'}"),
            _token_call(TOKEN_2022, "TransferChecked", 2562, (pool_ata, trade.mint, user_ata, pool)),
            _token_call(TOKEN, "TransferChecked", 6238, (derived_key("ata", trade.trader, "wsol"), pool)),
            event,
        ]
        accounts = (pool, trade.trader, GLOBAL, trade.mint, QUOTE_SOL, user_ata)
        ix = _anchor_ix("buy_v2" if trade.side == "buy" else "sell_v2", trade.token_raw, trade.sol_lamports)
        calls.append(Call(PUMP_AMM, body, 70_000 + rng.randrange(20_000), accounts, ix))
    elif kind == "unknown_event":
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
        body = [_log("Instruction: ExtendAccount"), _system_transfer(recipe.trade.trader, account, 695_040)]
        calls.append(Call(PUMP, [*body, event], 9_000 + rng.randrange(1000), (account,), _anchor_ix("extend_account")))
    elif kind == "undecodable":
        # Not base64, then shorter than a discriminator: what a client must count, not crash on.
        body = [_log("Instruction: Buy"), "Program data: !!not*base64!!", "Program data: AQID"]
        calls.append(Call(PUMP, body, 5_000 + rng.randrange(1000), (GLOBAL,), _anchor_ix("buy")))
    if recipe.pad_to:
        calls.append(_noise(MEMO, recipe.pad_to, "Memo (len 900)"))
    return calls


# -- rendering ------------------------------------------------------------------------------


@dataclass
class Rendered:
    logs: list[str]
    keys: list[str]  # account keys, fee payer first
    instructions: list[dict[str, Any]]
    inner: list[dict[str, Any]]
    units: int


class _Renderer:
    def __init__(self, payer: str) -> None:
        self.logs: list[str] = []
        self.keys: list[str] = [payer]
        self._index = {payer: 0}
        self.inner: list[dict[str, Any]] = []

    def key(self, address: str) -> int:
        if address not in self._index:
            self._index[address] = len(self.keys)
            self.keys.append(address)
        return self._index[address]

    def compiled(self, call: Call, depth: int | None) -> dict[str, Any]:
        return {
            "programIdIndex": self.key(call.program),
            "accounts": [self.key(a) for a in call.accounts],
            "data": b58encode(call.data),
            "stackHeight": depth,
        }

    def run(self, call: Call, depth: int, budget: int) -> int:
        """Log ``call`` at ``depth``; returns the compute units it consumed."""
        program = call.program
        self.logs.append(f"Program {program} invoke [{depth}]")
        used = call.units or 0
        for item in call.body:
            if isinstance(item, str):
                self.logs.append(item)
            elif isinstance(item, Call):
                self.inner.append(self.compiled(item, depth + 1))
                used += self.run(item, depth + 1, budget - used)
            else:  # an event: the log line, then the same bytes through the self-CPI
                self.logs.append(f"Program data: {base64.b64encode(item).decode()}")
                cpi = Call(PUMP, units=2143, accounts=(EVENT_AUTHORITY,), data=CPI_EVENT_TAG + item)
                self.inner.append(self.compiled(cpi, depth + 1))
                used += self.run(cpi, depth + 1, budget - used)
        if call.units is not None:
            self.logs.append(f"Program {program} consumed {used} of {budget} compute units")
        if call.ret is not None:
            self.logs.append(f"Program return: {program} {call.ret}")
        self.logs.append(f"Program {program} failed: {call.fail}" if call.fail else f"Program {program} success")
        return used


def payer(recipe: Recipe) -> str:
    if recipe.launch is not None:
        return recipe.launch.token.creator
    if recipe.trade is not None:
        return recipe.trade.trader
    return MIGRATION_AUTHORITY


def render(recipe: Recipe) -> Rendered:
    rng = random.Random(recipe.signature)
    r = _Renderer(payer(recipe))
    instructions: list[dict[str, Any]] = []
    inner: list[dict[str, Any]] = []
    budget, total = compute_limit(recipe.signature), 0
    for index, call in enumerate(_calls(recipe, rng)):
        instructions.append(r.compiled(call, None))
        r.inner = []
        used = r.run(call, 1, budget - total)
        total += used
        if r.inner:
            inner.append({"index": index, "instructions": r.inner})
        if call.fail:
            break
    logs = r.logs
    if recipe.truncated:
        logs = _truncate(logs)
    return Rendered(logs, r.keys, instructions, inner, total)


def _truncate(logs: list[str]) -> list[str]:
    kept, size = [], 0
    for line in logs:
        size += len(line)
        if size > LOG_LIMIT:
            break
        kept.append(line)
    return [*kept, "Log truncated"]


def event_payloads(rendered: Rendered) -> Iterator[bytes]:
    """The events a transaction's inner instructions carry (tag stripped), in order."""
    for group in rendered.inner:
        for ix in group["instructions"]:
            data = b58decode(ix["data"])
            if data.startswith(CPI_EVENT_TAG):
                yield data[len(CPI_EVENT_TAG) :]


def value_text(recipe: Recipe, rendered: Rendered) -> str:
    """The notification's ``value`` (and the history item): signature, err, logs."""
    return json.dumps({"signature": recipe.signature, "err": recipe.err, "logs": rendered.logs}, separators=(",", ":"))


def transaction_result(recipe: Recipe, rendered: Rendered) -> dict[str, Any]:
    """``getTransaction`` ``result`` with ``encoding: json``."""
    keys = rendered.keys
    programs = sum(1 for k in keys if k in PROGRAM_IDS)
    fee = 5000 + (recipe.slot % 97) * 1000
    pre = [0] * len(keys)
    pre[0] = 5_000_000_000 + (recipe.slot % 1000) * 1_000_000
    post = list(pre)
    post[0] -= fee
    meta: dict[str, Any] = {
        "err": recipe.err,
        "status": {"Ok": None} if recipe.err is None else {"Err": recipe.err},
        "fee": fee,
        "preBalances": pre,
        "postBalances": post,
        "innerInstructions": rendered.inner,
        "logMessages": rendered.logs,
        "preTokenBalances": [],
        "postTokenBalances": [],
        "rewards": [],
        "loadedAddresses": {"writable": [], "readonly": []},
        "computeUnitsConsumed": rendered.units,
        "costUnits": rendered.units + 1_440 + 300 * len(keys),
    }
    message = {
        "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": programs},
        "accountKeys": keys,
        "recentBlockhash": derived_key("blockhash", str(recipe.slot)),
        "instructions": rendered.instructions,
        "addressTableLookups": [],
    }
    return {
        "slot": recipe.slot,
        "blockTime": recipe.block_time,
        "version": 0,
        "meta": meta,
        "transaction": {"signatures": [recipe.signature], "message": message},
        "transactionIndex": sum(recipe.signature.encode()) % 1500,
    }


def fault_signature(label: str, n: int) -> str:
    return derived_signature("sim-solana", label, str(n))
