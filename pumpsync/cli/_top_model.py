"""The figures behind ``pumpsync top``'s view, fed one event at a time (no terminal, no rich: tests
feed it events; :mod:`pumpsync.cli._top_screen` draws them)."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pumpsync.events import Event
from pumpsync.market import Market, TokenView

# Pump.fun: the curve is complete once its 793.1 M "real" tokens are sold (of 1 B supply).
CURVE_TOKENS = 793_100_000.0
TRADE_WINDOW = 300.0  # seconds of trades behind "most traded"
SPARK = "▁▂▃▄▅▆▇█"
LAUNCH_WINDOW = 60.0  # launches/min counts the launches of the last real minute, sampled every second
NO_TRADES_AFTER = 20.0  # seconds of launches without one trade before the screen says why there may be none


def sparkline(values: Iterable[float]) -> str:
    values = list(values)
    top = max(values, default=0.0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


def bar(fraction: float, width: int) -> str:
    """A bar of ``width`` cells, eighths-of-a-cell precise."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")).ljust(width, "·")


@dataclass
class Token:
    mint: str
    symbol: str | None = None
    name: str | None = None
    tokens_sold: float | None = None  # None: we did not see the launch (nor a curve figure)
    graduated: bool = False

    @property
    def progress(self) -> float | None:
        """Bonding-curve progress in percent, from the launch (or a curve figure) and the trades since."""
        if self.graduated:
            return 100.0
        if self.tokens_sold is None:
            return None
        return min(100.0, max(0.0, self.tokens_sold / CURVE_TOKENS * 100.0))


class TopModel:
    """The figures behind the view, fed one event at a time; ``now`` is ``time.monotonic()``."""

    def __init__(
        self, started: float, max_tokens: int = 5000, market: Market | None = None, sort: str | None = None
    ) -> None:
        self.started = started
        # The derived figures (market cap, holders, developer share, progress) come from the market view;
        # ``sort``: rank "most traded" by one of its figures (pumpsync.market.SORTS) instead of 5-min volume.
        self.market = market if market is not None else Market(max_tokens=max_tokens)
        self.sort = sort
        self.filters: dict[str, Any] = {}
        self.tokens: dict[str, Token] = {}
        self.max_tokens = max_tokens
        self.launches: deque[tuple[int, str]] = deque(maxlen=50)  # (received_at ms, mint)
        self.graduations: deque[tuple[int, str, float | None]] = deque(maxlen=20)
        self.trades: deque[tuple[float, str, float]] = deque()  # (now, mint, sol) within TRADE_WINDOW
        self.volume: defaultdict[str, float] = defaultdict(float)
        self.count: Counter[str] = Counter()
        self.trade_seconds: Counter[int] = Counter()  # whole second since start -> trades
        self.launch_times: deque[float] = deque()  # ``now`` of each launch, in order, within the window
        self.trades_seen = 0
        self.events = 0
        self.notes: deque[str] = deque(maxlen=2)
        self.trades_hint = ""  # why a source may send no trades (its ProviderSpec.trades_hint)

    def _token(self, mint: str) -> Token:
        token = self.tokens.get(mint)
        if token is None:
            if len(self.tokens) >= self.max_tokens:  # forget the oldest: memory stays bounded
                del self.tokens[next(iter(self.tokens))]
            token = self.tokens[mint] = Token(mint)
        return token

    def observe(self, event: Event, now: float) -> None:
        self.events += 1
        self.market.update(event)
        mint = event.mint
        if mint is None:
            return
        token = self._token(mint)
        token.symbol = event.symbol or token.symbol
        token.name = event.name or token.name
        kind = event.kind
        if kind == "new_token":
            if token.tokens_sold is None:
                token.tokens_sold = 0.0
            if not any(m == mint for _, m in self.launches):
                self.launches.append((event.received_at, mint))
                self.launch_times.append(now)
        elif kind == "token_enriched" and event.bonding_curve_progress is not None:
            token.tokens_sold = event.bonding_curve_progress / 100.0 * CURVE_TOKENS
        elif kind == "trade":
            sol = event.sol_amount or 0.0
            if token.tokens_sold is not None and event.token_amount is not None:
                token.tokens_sold += event.token_amount if event.side == "buy" else -event.token_amount
            self.trades.append((now, mint, sol))
            self.volume[mint] += sol
            self.count[mint] += 1
            self.trade_seconds[int(now - self.started)] += 1
            self.trades_seen += 1
        elif kind in ("graduation", "migration") and not token.graduated:  # whichever the source reports first
            token.graduated = True
            self.graduations.append((event.received_at, mint, event.liquidity_sol))

    def expire(self, now: float) -> None:
        """Forget trades older than the window."""
        while self.trades and self.trades[0][0] < now - TRADE_WINDOW:
            _, mint, sol = self.trades.popleft()
            self.volume[mint] -= sol
            self.count[mint] -= 1
            if self.count[mint] <= 0:
                del self.count[mint], self.volume[mint]
        # launches/min's sparkline looks back a minute from each of its samples (at most 60 s ago)
        while self.launch_times and self.launch_times[0] <= now - 2 * LAUNCH_WINDOW:
            self.launch_times.popleft()

    def trades_per_second(self, now: float, n: int) -> list[float]:
        """The last ``n`` complete seconds (fewer, just after the start)."""
        last = int(now - self.started) - 1
        return [float(self.trade_seconds.get(s, 0)) for s in range(max(0, last - n + 1), last + 1)] or [0.0]

    def launches_per_minute(self, now: float, n: int) -> list[float]:
        """Launches in the real minute before each of the last ``n`` whole seconds (at most 60;
        fewer just after the start): a sliding count, never a short sample scaled up."""
        times = list(self.launch_times)
        elapsed = int(now - self.started)
        samples = [now - back for back in range(min(n, int(LAUNCH_WINDOW), elapsed + 1) - 1, -1, -1)]
        return [
            float(bisect.bisect_right(times, t) - bisect.bisect_right(times, t - LAUNCH_WINDOW)) for t in samples
        ] or [0.0]

    def view(self, mint: str) -> TokenView | None:
        return self.market.token(mint)

    def most_traded(self, n: int) -> list[tuple[Token, int, float]]:
        if self.sort is not None or self.filters:
            views = self.market.tokens(sort=self.sort or "volume_5m", limit=n, **self.filters)
            return [(self.tokens.get(v.mint) or Token(v.mint), v.w5m.trades, v.w5m.volume_sol) for v in views]
        ranked = sorted(self.count, key=lambda m: (self.volume[m], self.count[m]), reverse=True)[:n]
        return [(self.tokens.get(m) or Token(m), self.count[m], self.volume[m]) for m in ranked]
