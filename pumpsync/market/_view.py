"""What readers get: immutable snapshots of one token, built under the market's lock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Launch:
    """A mint's creation as seen: the developer (``creator``) and their first buy, if seen."""

    signature: str | None
    slot: int | None
    timestamp_ms: int
    creator: str | None
    dev_buy_tokens: float | None  # the creator's first buy (whole tokens); None: not seen
    dev_buy_sol: float | None


@dataclass(frozen=True)
class DevSell:
    """A sell by the developer (the launch's creator) wallet."""

    signature: str | None
    slot: int | None
    timestamp_ms: int
    tokens: float
    sol: float
    venue: str | None


@dataclass(frozen=True)
class Window:
    """Trades of the last ``seconds`` of market time, to whole seconds (1 h: to whole minutes)."""

    seconds: int
    volume_sol: float
    buys: int
    sells: int
    volume_usd: float | None  # at the current SOL/USD price; None when no price is known

    @property
    def trades(self) -> int:
        return self.buys + self.sells


@dataclass(frozen=True)
class TokenView:
    """One mint's figures at one instant (a consistent snapshot: every field from the same state).

    Holder figures are ESTIMATES from the trades this market saw: a wallet's balance is its buys
    minus its sells since the market first saw the mint. They equal the chain's only when the whole
    life was seen (``whole_life_seen``: the launch and every trade since) and no tokens moved
    outside trades (transfers are not trades).
    """

    mint: str
    name: str | None
    symbol: str | None
    launch: Launch | None
    whole_life_seen: bool
    age_s: float | None  # market time since the launch
    price_sol: float | None  # the last trade's price (trade order: time, slot, signature), SOL per token
    market_cap_sol: float | None  # price x 1 B supply
    market_cap_usd: float | None
    progress: float | None  # bonding-curve progress, percent; 100 once graduated
    graduated: bool
    graduated_ms: int | None
    migrated: bool
    migrated_ms: int | None
    liquidity_sol: float | None
    venue: str | None  # of the last trade: "curve", "pumpswap" or None (the source does not say)
    w1m: Window
    w5m: Window
    w1h: Window
    trades: int
    buys: int
    sells: int
    volume_sol: float  # since first seen
    pumpswap_trades: int
    unique_traders: int
    holders: int  # estimate: wallets with a positive balance from the trades seen
    top10_share: float  # estimate: percent of the 1 B supply held by the 10 largest such wallets
    dev_tokens: float | None  # the developer's balance from the trades seen; None: creator unknown
    dev_share: float | None  # percent of supply
    dev_sells: tuple[DevSell, ...]
    first_slot_buyers: tuple[str, ...]  # distinct wallets (not the developer) buying in the launch slot
    early_buyers: tuple[str, ...]  # distinct wallets (not the developer) buying in the first N slots
    max_same_slot_buyers: int  # most distinct wallets buying in one of the first N slots (bundle signal)
    last_trade_ms: int | None
