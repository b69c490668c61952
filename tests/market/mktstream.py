"""A random, hostile stream of market events: several mints, launches before and after their trades,
bursts in one second and gaps of minutes, late (backfilled) trades past the kept candles, duplicates
from a second source, zero and int amounts, trades without a signature, a creator named on trades,
graduations, PumpSwap trades, bad events. Deterministic for a seed."""

from __future__ import annotations

import random

from mkthelpers import SLOT0, T0

from pumpsync.events import Event


def random_stream(seed: int, n: int = 4_000, mints: int = 4) -> list[Event]:
    rng = random.Random(seed)
    names = [f"Mint{i}{'x' * 36}pump" for i in range(mints)]
    creators = {m: f"Dev{i}" for i, m in enumerate(names)}
    wallets = [f"W{i}" for i in range(40)] + list(creators.values())
    clock = {m: T0 + rng.randrange(0, 5_000) for m in names}
    slot = {m: SLOT0 + rng.randrange(0, 50) for m in names}
    out: list[Event] = []
    launched: set[str] = set()
    for i in range(n):
        mint = rng.choice(names)
        step = rng.random()
        clock[mint] += 0 if step < 0.3 else rng.randrange(1, 900) if step < 0.5 else rng.randrange(1_000, 90_000)
        slot[mint] += rng.randrange(0, 3)
        ms, sl = clock[mint], slot[mint]
        if rng.random() < 0.05:  # a late trade: seconds to an hour back, past every kept 1 s candle
            ms -= rng.choice((rng.randrange(1, 5_000), rng.randrange(600_000, 3_600_000)))
            sl -= rng.randrange(0, 40)
        roll = rng.random()
        if mint not in launched and (roll < 0.02 or (i > n // 2 and roll < 0.1)):  # some launches come late
            launched.add(mint)
            buy = rng.random() < 0.5
            out.append(
                Event(
                    "new_token", "test", mint, f"L{mint}", SLOT0, T0, T0, 0, False, {}, name="N", symbol="S",
                    creator=creators[mint], bonding_curve_progress=rng.choice((None, 1.5)),
                    initial_buy_tokens=30_000_000.0 if buy else None, initial_buy_sol=0.9 if buy else None,
                )
            )  # fmt: skip
            continue
        if roll < 0.01:
            kind = rng.choice(("graduation", "migration"))
            out.append(Event(kind, "test", mint, f"G{i}", sl, ms, ms, 0, False, {}, liquidity_sol=79.0))
            continue
        trader = rng.choice(wallets)
        side = "buy" if rng.random() < 0.6 else "sell"
        tokens: float = float(rng.randrange(1, 40_000_000))
        sol: float = round(tokens * rng.uniform(2e-8, 4e-8), 9)
        if rng.random() < 0.02:
            tokens = sol = 0.0  # a zero trade: no price
        elif rng.random() < 0.02:
            tokens = int(tokens)  # an int amount
        price = rng.choice((sol / tokens if tokens else None, None))
        sig = None if rng.random() < 0.02 else f"S{i}"
        event = Event(
            "trade", "test", mint, sig, rng.choice((sl, sl, None)), rng.choice((ms, ms, None)), ms, 0, False, {},
            side=side, sol_amount=sol, token_amount=tokens, trader=rng.choice((trader, trader, None)),
            price_sol=price, creator=creators[mint] if rng.random() < 0.03 else None,
            venue=rng.choice((None, "curve", "pumpswap")),
        )  # fmt: skip
        if rng.random() < 0.01:
            event = event._replace(sol_amount=float("nan"))  # bad: counted and skipped
        out.append(event)
        if rng.random() < 0.05:  # the same trade again from a second source, now or later
            out.insert(rng.randrange(max(0, len(out) - 50), len(out) + 1), event._replace(provider="other"))
    return out
