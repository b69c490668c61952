"""The market model: determinism, identifiers, bonding-curve arithmetic, event mix."""

from __future__ import annotations

from collections import Counter

import pytest

from pumpsync.simulator._ids import ALPHABET, CounterSuffix
from pumpsync.simulator.market import (
    INITIAL_REAL_TOKENS,
    LAMPORTS_PER_SOL,
    Curve,
    Graduation,
    Launch,
    Market,
    MarketEvent,
    Trade,
)


def _b58decode(text: str) -> bytes:
    value = 0
    for ch in text:
        value = value * 58 + ALPHABET.index(ch)
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _run(seed: int, steps: int) -> list[MarketEvent]:
    market = Market(seed)
    events: list[MarketEvent] = []
    for _ in range(steps):
        events.extend(market.step())
    return events


def _content(event: MarketEvent) -> tuple[object, ...]:
    """Everything but the wall-clock fields."""
    if isinstance(event, Trade):
        return (
            event.kind,
            event.mint,
            event.trader,
            event.side,
            event.sol_lamports,
            event.token_raw,
            event.signature,
            event.curve,
        )
    return (event.kind, event.mint, event.signature, event.curve)


def test_same_seed_same_contents_different_seed_differs() -> None:
    a, b, c = _run(7, 300), _run(7, 300), _run(8, 300)
    assert [_content(e) for e in a] == [_content(e) for e in b]
    assert [_content(e) for e in a] != [_content(e) for e in c]


def test_identifiers_look_like_solana() -> None:
    events = _run(3, 400)
    launches = [e for e in events if isinstance(e, Launch)]
    trades = [e for e in events if isinstance(e, Trade)]
    assert launches and trades
    for launch in launches:
        assert len(launch.mint) == 44 and launch.mint.endswith("pump")
        assert len(_b58decode(launch.mint)) == 32
        assert len(_b58decode(launch.token.creator)) == 32
        assert len(launch.signature) == 88 and len(_b58decode(launch.signature)) == 64
        assert launch.token.uri.startswith("https://ipfs.io/ipfs/Qm")
        assert launch.token.image.startswith("https://ipfs.io/ipfs/Qm")
        assert launch.token.name and launch.token.symbol
    for trade in trades:
        assert len(_b58decode(trade.trader)) == 32
        assert len(trade.signature) == 88


def test_counter_suffix_is_unique_and_fixed_width() -> None:
    suffix = CounterSuffix()
    rendered = {suffix.render(n) for n in range(0, 20_000_000, 997)}
    assert len(rendered) == len(range(0, 20_000_000, 997))
    assert {len(r) for r in rendered} == {8}
    assert all(set(r) <= set(ALPHABET) for r in rendered)


def test_bonding_curve_constants_and_completion() -> None:
    curve = Curve()
    assert curve.price_sol == pytest.approx(30 / 1_073_000_000)
    assert curve.market_cap_sol == pytest.approx(30 / 1_073_000_000 * 1e9)
    k = curve.virtual_sol * curve.virtual_tokens
    after, tokens, spent = curve.buy(1 * LAMPORTS_PER_SOL)
    assert spent == LAMPORTS_PER_SOL and tokens > 0
    assert after.virtual_sol * after.virtual_tokens == pytest.approx(k, rel=1e-9)
    back, lamports = after.sell(tokens)
    assert lamports == pytest.approx(LAMPORTS_PER_SOL, rel=1e-6)
    assert back.real_tokens == INITIAL_REAL_TOKENS
    done, tokens, spent = curve.buy(500 * LAMPORTS_PER_SOL)
    assert done.complete and tokens == INITIAL_REAL_TOKENS
    assert spent / LAMPORTS_PER_SOL == pytest.approx(85.0, abs=0.1)  # ~85 SOL completes the curve
    assert done.progress == pytest.approx(100.0)


def test_mix_launch_share_graduations_and_shared_signatures() -> None:
    events = _run(11, 6000)
    kinds = Counter(e.kind for e in events)
    assert 7 <= kinds["trade"] / kinds["launch"] <= 12
    assert 10 <= kinds["launch"] / kinds["graduation"] <= 40  # about 1 token in 20 graduates
    by_sig = Counter(e.signature for e in events)
    shared = [e for e in events if by_sig[e.signature] > 1]
    assert shared, "some launches carry the creator's buy in the same transaction"
    for launch in (e for e in events if isinstance(e, Launch) and by_sig[e.signature] == 2):
        buy = next(e for e in shared if isinstance(e, Trade) and e.signature == launch.signature)
        assert (buy.slot, buy.mint, buy.trader, buy.side) == (launch.slot, launch.mint, launch.token.creator, "buy")
    slots = [e.slot for e in events]
    assert slots == sorted(slots)


def test_trades_follow_live_curves_and_graduations_end_them() -> None:
    events = _run(5, 3000)
    curves: dict[str, Curve] = {}
    graduated: set[str] = set()
    for event in events:
        if isinstance(event, Launch):
            curves[event.mint] = event.curve
        elif isinstance(event, Trade) and event.venue == "pumpswap":
            assert event.mint in graduated, "PumpSwap trades only after graduation"
            assert event.price_sol > 0 and event.token_raw > 0
        elif isinstance(event, Trade):
            assert event.mint not in graduated
            assert event.mint in curves, "trades only on launched tokens"
            curves[event.mint] = event.curve
            assert event.price_sol > 0
        elif isinstance(event, Graduation):
            assert curves[event.mint].complete
            assert event.liquidity_sol > 70
            graduated.add(event.mint)
    assert graduated
    assert any(isinstance(e, Trade) and e.venue == "pumpswap" for e in events)  # a token's life goes on


def test_forced_kinds() -> None:
    market = Market(2)
    launch = market.step("launch")
    assert launch[0].kind == "launch"
    trade = market.step("trade")
    assert trade[0].kind == "trade"
    grad = market.step("graduation")
    assert [e.kind for e in grad][-2:] == ["trade", "graduation"]
    with pytest.raises(ValueError):
        market.step("bogus")  # type: ignore[arg-type]
