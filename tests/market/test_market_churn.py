"""One writer feeding, reader threads hammering snapshots: every snapshot is consistent, nothing raises."""

from __future__ import annotations

import threading

from mkthelpers import T0, launch, trade

from pumpsync.market import Market
from pumpsync.market._token import TokenState
from pumpsync.market._view import TokenView


def _consistent(view: TokenView) -> None:
    assert view.trades == view.buys + view.sells
    assert view.w1m.trades <= view.w5m.trades <= view.w1h.trades <= view.trades
    assert view.holders <= view.unique_traders
    # every buyer bought the same amount and every sell was a whole balance: holders are exactly buyers - sellers
    assert view.holders == view.buys - view.sells
    assert abs(view.volume_sol - 0.01 * view.trades) < 1e-9


def test_readers_get_consistent_snapshots_while_one_writer_feeds() -> None:
    market = Market(max_tokens=8, candle_queue=50)
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                for view in market.tokens(sort="volume_5m"):
                    _consistent(view)
                    market.candles(view.mint, "1s", fill=True)
                market.closed_candles()
                market.stats()
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(3_000):
            mint = f"M{i % 12}"
            ms = T0 + i * 37
            if i < 12:
                market.update(launch(mint=mint, creator=f"dev{i}", sig=f"L{i}", ms=ms))
            wallet = f"W{i}"
            market.update(trade(wallet, "buy", 1e6, 0.01, mint=mint, ms=ms, slot=i))
            if i % 3 == 0:
                market.update(trade(wallet, "sell", 1e6, 0.01, mint=mint, ms=ms + 1, slot=i))
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[0]
    assert reads[0] > 0 and market.stats()["evicted"] > 0 and len(market) == 8
    assert TokenState.__slots__  # the per-mint state stays slotted: memory per tracked mint is small
