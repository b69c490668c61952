"""Deterministic Pump.fun market model: launches, bonding-curve trades, graduations, and the
graduated tokens' PumpSwap pool trades after them (``Trade.venue == "pumpswap"``).

No I/O here. Every random draw comes from one ``random.Random(seed)``, so the same seed
gives the same sequence of event contents (mints, wallets, signatures, names, amounts);
only slots and timestamps follow the injected wall clock.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pumpsync.simulator import _ids

LAMPORTS_PER_SOL = 1_000_000_000
TOKEN_DECIMALS = 6
SOL_DECIMALS = 9
TOKEN_UNIT = 1_000_000  # 10**TOKEN_DECIMALS
SOL_MINT = "So11111111111111111111111111111111111111112"
TOTAL_SUPPLY_TOKENS = 1_000_000_000

INITIAL_VIRTUAL_SOL = 30 * LAMPORTS_PER_SOL
INITIAL_VIRTUAL_TOKENS = 1_073_000_000 * TOKEN_UNIT
INITIAL_REAL_TOKENS = 793_100_000 * TOKEN_UNIT
# Pump.fun keeps ~6 SOL of the ~85 SOL raised as a migration fee.
MIGRATION_FEE_SOL = 6.0

EventKind = Literal["launch", "trade", "graduation"]
Side = Literal["buy", "sell"]

_LAUNCH_SHARE = 0.1  # ~1 launch per 9 trades
_HYPE_SHARE = 0.05  # ~1 token in 20 attracts whales and graduates
_MAX_LIVE = 40
_MAX_POOLS = 40  # graduated tokens still traded (on PumpSwap)
_POOL_SHARE = 0.15  # of trades, once a token has graduated: a PumpSwap pool trade
POOL_FEE_BPS = 30  # LP 20 + protocol 5 + creator 5 (PumpSwap's usual split)
_WALLET_POOL = 200

_ADJECTIVES = (
    "Moon",
    "Based",
    "Tiny",
    "Giga",
    "Sleepy",
    "Turbo",
    "Golden",
    "Frog",
    "Cosmic",
    "Angry",
    "Lucky",
    "Retro",
    "Pixel",
    "Hyper",
    "Silent",
    "Dancing",
    "Baby",
    "Royal",
    "Wild",
    "Neon",
)
_NOUNS = (
    "Cat",
    "Dog",
    "Pepe",
    "Whale",
    "Rocket",
    "Banana",
    "Wizard",
    "Penguin",
    "Goblin",
    "Shiba",
    "Hamster",
    "Toad",
    "Otter",
    "Panda",
    "Degen",
    "Chad",
    "Ape",
    "Duck",
    "Llama",
    "Bonk",
)
_TAGLINES = (
    "The next 1000x on Solana.",
    "Community owned, no dev allocation.",
    "Just a meme. No roadmap.",
    "Fair launch on Pump.fun.",
    "Built by degens for degens.",
    "To the moon and beyond.",
)


@dataclass(frozen=True)
class Curve:
    """Bonding-curve reserves: lamports for SOL, raw units (6 decimals) for tokens."""

    virtual_sol: int = INITIAL_VIRTUAL_SOL
    virtual_tokens: int = INITIAL_VIRTUAL_TOKENS
    real_sol: int = 0
    real_tokens: int = INITIAL_REAL_TOKENS

    @property
    def complete(self) -> bool:
        return self.real_tokens <= 0

    @property
    def price_sol(self) -> float:
        """SOL per whole token."""
        return (self.virtual_sol / LAMPORTS_PER_SOL) / (self.virtual_tokens / TOKEN_UNIT)

    @property
    def market_cap_sol(self) -> float:
        return self.price_sol * TOTAL_SUPPLY_TOKENS

    @property
    def sol_raised(self) -> float:
        return self.real_sol / LAMPORTS_PER_SOL

    @property
    def progress(self) -> float:
        """Percent (0-100) of the curve's real tokens sold."""
        return (INITIAL_REAL_TOKENS - self.real_tokens) / INITIAL_REAL_TOKENS * 100.0

    def buy(self, lamports: int) -> tuple[Curve, int, int]:
        """Spend ``lamports``; returns (new curve, tokens out, lamports actually spent)."""
        tokens = self.virtual_tokens * lamports // (self.virtual_sol + lamports)
        if tokens >= self.real_tokens:
            # The last buy takes what is left and pays only for that.
            tokens = self.real_tokens
            lamports = -(-self.virtual_sol * tokens // (self.virtual_tokens - tokens))
        new = Curve(
            self.virtual_sol + lamports,
            self.virtual_tokens - tokens,
            self.real_sol + lamports,
            self.real_tokens - tokens,
        )
        return new, tokens, lamports

    def sell(self, tokens: int) -> tuple[Curve, int]:
        """Sell ``tokens`` raw units; returns (new curve, lamports out)."""
        lamports = self.virtual_sol * tokens // (self.virtual_tokens + tokens)
        lamports = min(lamports, self.real_sol)
        new = Curve(
            self.virtual_sol - lamports,
            self.virtual_tokens + tokens,
            self.real_sol - lamports,
            self.real_tokens + tokens,
        )
        return new, lamports


@dataclass(frozen=True)
class Socials:
    website: str | None = None
    twitter: str | None = None
    telegram: str | None = None


@dataclass(frozen=True)
class Token:
    mint: str
    creator: str
    name: str
    symbol: str
    description: str
    image: str
    uri: str
    mayhem_mode: bool
    socials: Socials
    created_slot: int
    created_at_ms: int


@dataclass(frozen=True)
class Launch:
    token: Token
    signature: str
    slot: int
    timestamp: int
    curve: Curve  # after the creator's initial buy in the same transaction, if any
    kind: Literal["launch"] = field(default="launch", init=False)

    @property
    def mint(self) -> str:
        return self.token.mint


@dataclass(frozen=True)
class Trade:
    mint: str
    trader: str
    side: Side
    sol_lamports: int
    token_raw: int
    signature: str
    slot: int
    timestamp: int
    curve: Curve  # after this trade (a PumpSwap trade: the pool's reserves as virtual sol/tokens, before it)
    sol_usd: float
    venue: Literal["curve", "pumpswap"] = "curve"
    kind: Literal["trade"] = field(default="trade", init=False)

    @property
    def sol_amount(self) -> float:
        return self.sol_lamports / LAMPORTS_PER_SOL

    @property
    def token_amount(self) -> float:
        return self.token_raw / TOKEN_UNIT

    @property
    def price_sol(self) -> float:
        """Execution price, SOL per whole token."""
        return self.sol_amount / self.token_amount if self.token_raw else self.curve.price_sol


@dataclass(frozen=True)
class Graduation:
    token: Token
    signature: str
    slot: int
    timestamp: int
    curve: Curve
    liquidity_sol: float
    time_to_graduate_s: float
    kind: Literal["graduation"] = field(default="graduation", init=False)

    @property
    def mint(self) -> str:
        return self.token.mint


MarketEvent = Launch | Trade | Graduation


@dataclass
class _Pool:
    """A graduated token's PumpSwap pool: constant product over its reserves (raw units, lamports)."""

    token: Token
    base: int
    quote: int
    holders: dict[str, int] = field(default_factory=dict)


@dataclass
class _Live:
    token: Token
    curve: Curve
    hype: bool
    holders: dict[str, int] = field(default_factory=dict)


class Market:
    """Generates market events on demand; the caller owns the pacing."""

    def __init__(
        self,
        seed: int,
        clock: Callable[[], float] = time.time,
        slots_per_second: float = 2.5,
    ) -> None:
        self._rng = random.Random(seed)
        self._clock = clock
        self._slots_per_second = slots_per_second
        self._t0 = clock()
        self._base_slot = 309_000_000 + self._rng.randrange(1_000_000)
        self._last_slot = self._base_slot
        self._last_ms = 0
        self._sol_usd = 140.0 + self._rng.random() * 40.0
        self._live: dict[str, _Live] = {}
        self._pools: dict[str, _Pool] = {}  # graduated mints, oldest first
        self._wallets = [_ids.wallet(self._rng) for _ in range(_WALLET_POOL)]
        self.events_generated = 0

    # -- clock -----------------------------------------------------------------------------

    def _now(self) -> tuple[int, int]:
        """(slot, epoch ms), both non-decreasing."""
        now = self._clock()
        slot = self._base_slot + int((now - self._t0) * self._slots_per_second)
        self._last_slot = max(self._last_slot, slot)
        self._last_ms = max(self._last_ms, int(now * 1000))
        return self._last_slot, self._last_ms

    @property
    def current_slot(self) -> int:
        return self._now()[0]

    @property
    def sol_usd(self) -> float:
        return self._sol_usd

    # -- public ----------------------------------------------------------------------------

    def step(self, kind: EventKind | None = None) -> list[MarketEvent]:
        """One market step. The first event is of ``kind``; it may bring followers in the
        same list: a launch's creator buy (same signature), a buy's graduation, or the
        launch that a trade needed because no token was live."""
        self._sol_usd *= 1.0 + self._rng.gauss(0.0, 0.0005)
        if kind is None:
            kind = "launch" if not self._live or self._rng.random() < _LAUNCH_SHARE else "trade"
        if kind == "launch":
            events = self._launch()
        elif kind == "trade":
            events = self._ensure_live() + self._trade()
        elif kind == "graduation":
            events = self._ensure_live() + self._graduate()
        else:
            raise ValueError(f"unknown event kind: {kind!r}")
        self.events_generated += len(events)
        return events

    # -- steps -----------------------------------------------------------------------------

    def _ensure_live(self) -> list[MarketEvent]:
        return [] if self._live else self._launch()

    def _new_token(self, slot: int, ms: int) -> Token:
        rng = self._rng
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
        symbol = (adjective[:2] + noun[:3]).upper() if rng.random() < 0.5 else noun.upper()[:6]
        name = f"{adjective} {noun}"
        socials = Socials(
            website=f"https://{noun.lower()}{rng.randrange(100, 999)}.fun" if rng.random() < 0.4 else None,
            twitter=f"https://x.com/{adjective.lower()}{noun.lower()}" if rng.random() < 0.6 else None,
            telegram=f"https://t.me/{noun.lower()}_{symbol.lower()}" if rng.random() < 0.3 else None,
        )
        return Token(
            mint=_ids.pump_mint(rng),
            creator=_ids.wallet(rng),
            name=name,
            symbol=symbol,
            description=f"{name} ({symbol}). {rng.choice(_TAGLINES)}",
            image=f"https://ipfs.io/ipfs/{_ids.ipfs_cid(rng)}",
            uri=f"https://ipfs.io/ipfs/{_ids.ipfs_cid(rng)}",
            mayhem_mode=rng.random() < 0.03,
            socials=socials,
            created_slot=slot,
            created_at_ms=ms,
        )

    def _launch(self) -> list[MarketEvent]:
        rng = self._rng
        slot, ms = self._now()
        token = self._new_token(slot, ms)
        live = _Live(token, Curve(), hype=rng.random() < _HYPE_SHARE)
        sig = _ids.signature(rng)
        events: list[MarketEvent] = []
        initial: Trade | None = None
        if rng.random() < 0.5:
            # The creator's initial buy rides in the creation transaction.
            lamports = int(rng.uniform(0.3, 3.0) * LAMPORTS_PER_SOL)
            live.curve, tokens, lamports = live.curve.buy(lamports)
            live.holders[token.creator] = tokens
            initial = Trade(
                token.mint, token.creator, "buy", lamports, tokens, sig, slot, ms, live.curve, self._sol_usd
            )
        events.append(Launch(token, sig, slot, ms, live.curve))
        if initial is not None:
            events.append(initial)
        self._live[token.mint] = live
        self._evict()
        return events

    def _evict(self) -> None:
        while len(self._live) > _MAX_LIVE:
            victim = next((m for m, lv in self._live.items() if not lv.hype), next(iter(self._live)))
            del self._live[victim]

    def _pick_live(self) -> _Live:
        tokens = list(self._live.values())
        weights = [6.0 if lv.hype else 1.0 for lv in tokens]
        return self._rng.choices(tokens, weights=weights, k=1)[0]

    def _trade(self) -> list[MarketEvent]:
        rng = self._rng
        if self._pools and rng.random() < _POOL_SHARE:
            return self._swap(rng.choice(list(self._pools.values())))
        live = self._pick_live()
        if live.holders and rng.random() < (0.2 if live.hype else 0.35):
            return self._sell(live)
        if live.hype and rng.random() < 0.8:
            lamports = int(rng.uniform(5.0, 20.0) * LAMPORTS_PER_SOL)  # whale
        else:
            sol = min(15.0, max(0.01, rng.lognormvariate(math.log(0.3), 1.0)))
            lamports = int(sol * LAMPORTS_PER_SOL)
        return self._buy(live, lamports)

    def _graduate(self) -> list[MarketEvent]:
        live = max(self._live.values(), key=lambda lv: lv.curve.progress)
        return self._buy(live, 200 * LAMPORTS_PER_SOL)

    def _trader(self) -> str:
        rng = self._rng
        return rng.choice(self._wallets) if rng.random() < 0.3 else _ids.wallet(rng)

    def _buy(self, live: _Live, lamports: int) -> list[MarketEvent]:
        trader = self._trader()
        sig = _ids.signature(self._rng)
        slot, ms = self._now()
        live.curve, tokens, lamports = live.curve.buy(lamports)
        live.holders[trader] = live.holders.get(trader, 0) + tokens
        events: list[MarketEvent] = [
            Trade(live.token.mint, trader, "buy", lamports, tokens, sig, slot, ms, live.curve, self._sol_usd)
        ]
        if live.curve.complete:
            events.append(self._graduation(live, slot, ms))
        return events

    def _sell(self, live: _Live) -> list[MarketEvent]:
        rng = self._rng
        seller = rng.choice(list(live.holders))
        held = live.holders[seller]
        share = rng.uniform(0.25, 1.0)
        tokens = held if share > 0.9 else max(1, int(held * share))
        live.curve, lamports = live.curve.sell(tokens)
        if tokens >= held:
            del live.holders[seller]
        else:
            live.holders[seller] = held - tokens
        slot, ms = self._now()
        return [
            Trade(
                live.token.mint,
                seller,
                "sell",
                lamports,
                tokens,
                _ids.signature(rng),
                slot,
                ms,
                live.curve,
                self._sol_usd,
            )
        ]

    def _swap(self, pool: _Pool) -> list[MarketEvent]:
        """A trade in a graduated token's PumpSwap pool (fees kept in the pool, for simplicity)."""
        rng = self._rng
        trader = self._trader()
        before = Curve(pool.quote, pool.base, pool.quote, pool.base)
        if pool.holders and rng.random() < 0.35:
            trader = rng.choice(list(pool.holders))
            held = pool.holders.pop(trader)
            tokens = max(1, held // 2)
            if held - tokens:
                pool.holders[trader] = held - tokens
            lamports = pool.quote * tokens // (pool.base + tokens) * (10_000 - POOL_FEE_BPS) // 10_000
            pool.base, pool.quote = pool.base + tokens, pool.quote - lamports
            side: Side = "sell"
        else:
            lamports = int(min(20.0, max(0.01, rng.lognormvariate(math.log(0.5), 1.0))) * LAMPORTS_PER_SOL)
            tokens = pool.base * (lamports * (10_000 - POOL_FEE_BPS) // 10_000) // (pool.quote + lamports)
            pool.base, pool.quote = pool.base - tokens, pool.quote + lamports
            pool.holders[trader] = pool.holders.get(trader, 0) + tokens
            side = "buy"
        slot, ms = self._now()
        sig = _ids.signature(rng)
        mint = pool.token.mint
        return [Trade(mint, trader, side, lamports, tokens, sig, slot, ms, before, self._sol_usd, "pumpswap")]

    def _graduation(self, live: _Live, slot: int, ms: int) -> Graduation:
        del self._live[live.token.mint]
        # The curve's SOL (less the migration fee) and its remaining supply seed the token's pool.
        quote = max(LAMPORTS_PER_SOL, live.curve.real_sol - int(MIGRATION_FEE_SOL * LAMPORTS_PER_SOL))
        base = TOTAL_SUPPLY_TOKENS * TOKEN_UNIT - INITIAL_REAL_TOKENS
        self._pools[live.token.mint] = _Pool(live.token, base, quote, dict(live.holders))
        while len(self._pools) > _MAX_POOLS:
            del self._pools[next(iter(self._pools))]
        return Graduation(
            token=live.token,
            signature=_ids.signature(self._rng),
            slot=slot,
            timestamp=ms,
            curve=live.curve,
            liquidity_sol=round(live.curve.sol_raised - MIGRATION_FEE_SOL, 9),
            time_to_graduate_s=(ms - live.token.created_at_ms) / 1000.0,
        )
