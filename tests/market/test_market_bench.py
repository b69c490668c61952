"""``python -m pumpsync_bench.market``: the bulk workload's events through the market view (no timing
asserted); each of those trades but a mint's first takes the fast path, and the longer candles get
every trade of the second at hand."""

from __future__ import annotations

from pumpsync.events import Event
from pumpsync.market import Market
from pumpsync_bench import market as bench_market


def test_the_bulk_workloads_trades_take_the_fast_path() -> None:
    batch = bench_market.events(300)
    assert len(batch) == 300 and {e.kind for e in batch} == {"trade"}
    general: list[Event] = []

    class Counting(Market):
        def _apply(self, event: Event) -> bool:
            general.append(event)
            return super()._apply(event)

    market = Counting()
    assert market.feed(batch) == 300
    assert len(general) == len({e.mint for e in batch})  # each mint's first trade: a new mint
    (mint,) = {e.mint for e in batch}
    candles = {interval: market.candles(mint, interval) for interval in ("1s", "1m", "5m")}
    for interval in ("1m", "5m"):
        assert sum(c.trades for c in candles[interval]) == 300 == sum(c.trades for c in candles["1s"])
    per_round = bench_market.measure(batch, rounds=2)
    assert len(per_round) == 2 and all(us > 0 for us in per_round)
