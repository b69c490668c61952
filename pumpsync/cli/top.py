"""``pumpsync top``: a full-screen, refreshing view of a live stream (also ``pumpsync demo``'s default).

It reads what any user code can read: events from ``client.get()`` and counters from
``client.stats()``. :class:`TopModel` keeps the figures (no terminal needed: tests feed it
events); :func:`run_top` drives a :class:`rich.live.Live` screen with it.
"""

from __future__ import annotations

import bisect
import logging
import queue
import signal
import sys
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pumpsync.cli._market_options import make_market, market_filters, market_options
from pumpsync.cli._options import client_options, configuration_error, make_client
from pumpsync.cli._render import terminal_safe
from pumpsync.client import Client
from pumpsync.errors import ClientClosed, ConfigurationError, EndOfStream, ProviderRefused, PumpsyncError
from pumpsync.events import Event
from pumpsync.market import SORTS, Market, TokenView

# Pump.fun: the curve is complete once its 793.1 M "real" tokens are sold (of 1 B supply).
CURVE_TOKENS = 793_100_000.0
TRADE_WINDOW = 300.0  # seconds of trades behind "most traded"
SPARK = "▁▂▃▄▅▆▇█"
LAUNCH_WINDOW = 60.0  # launches/min counts the launches of the last real minute, sampled every second
NO_TRADES_AFTER = 20.0  # seconds of launches without one trade before the screen says why there may be none
SUMMARY_EVERY = 10.0  # seconds between the plain lines of a piped or redirected `top`
REFRESH = 0.5  # seconds between screen updates
EXIT_REFUSED, EXIT_FATAL = 3, 1


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


def _safe(text: str | None, width: int | None = None) -> str:
    """Provider strings are untrusted: no control characters; cut to ``width``."""
    text = terminal_safe(text or "")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


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


def _clock(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def _age(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "-"
    age = max(0.0, now - epoch)
    return f"{age:.1f}s" if age < 60 else f"{age / 60:.0f}m"


def _table(title: str, *columns: tuple[str, dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", box=None, padding=(0, 1), expand=False)
    for header, options in columns:
        table.add_column(header, **options)
    return table


def _figures(view: TokenView | None) -> tuple[str, str, str]:
    """Market cap (USD if a price is known, else SOL), holders (estimate), developer's share."""
    if view is None:
        return "-", "-", "-"
    if view.market_cap_usd is not None:
        mcap = f"${view.market_cap_usd / 1000:,.1f}k"
    else:
        mcap = "-" if view.market_cap_sol is None else f"{view.market_cap_sol:,.0f}◎"
    dev = "-" if view.dev_share is None else f"{view.dev_share:.1f}"
    return mcap, str(view.holders), dev


def render(model: TopModel, stats: dict[str, Any], header: str, now: float, width: int, height: int) -> RenderableType:
    """The screen: a pure function of the model and ``client.stats()``, sized to ``width`` x ``height``."""
    model.expire(now)
    wall = time.time()
    conns = stats.get("connections", [])
    queue_line = f"queue {stats.get('queue_depth', 0)}/{stats.get('queue_capacity', 0)}"
    top = Text(_safe(header, width), style="bold")
    totals = Text(
        f"events {stats.get('delivered', 0)}  duplicates {stats.get('duplicates', 0)}  "
        f"dropped {stats.get('dropped', 0)}  {queue_line}"
    )
    spark_width = max(10, min(60, width - 26))
    tps = model.trades_per_second(now, spark_width)
    lpm = model.launches_per_minute(now, spark_width)
    rates = Text.assemble(
        ("launches/min ", "bold"), (sparkline(lpm), "cyan"), f" {lpm[-1]:6.1f}\n",
        ("trades/s     ", "bold"), (sparkline(tps), "green"), f" {tps[-1]:6.1f}",
    )  # fmt: skip
    # Rows left for the three lists (each also has a title and a header line); graduations are rare.
    spare = max(3, height - 12 - len(conns) - len(model.notes))
    n_grad = max(1, min(len(model.graduations), spare // 4))
    n_launch = max(1, (spare - n_grad) // 2)
    n_traded = max(1, spare - n_grad - n_launch)

    launches = _table(
        "newest launches",
        ("time", {"no_wrap": True}),
        ("mint", {"no_wrap": True, "min_width": 44, "style": "cyan"}),
        ("symbol", {"no_wrap": True, "overflow": "ellipsis", "max_width": 10}),
        ("name", {"no_wrap": True, "overflow": "ellipsis"}),
    )
    for ms, mint in list(model.launches)[-n_launch:][::-1]:
        token = model.tokens.get(mint) or Token(mint)
        launches.add_row(_clock(ms), mint, _safe(token.symbol) or "…", _safe(token.name))

    bar_width = max(3, min(20, (width - 96) // 2))  # what the mint and the figures leave, shared by two bars
    most = model.most_traded(n_traded)
    top_volume = max((v for _, _, v in most), default=0.0)
    title = f"most traded, last {TRADE_WINDOW / 60:.0f} min" if model.sort is None else f"top by {model.sort}"
    traded = _table(
        title,
        ("mint", {"no_wrap": True, "min_width": 44, "style": "cyan"}),
        ("trades", {"justify": "right", "no_wrap": True}),
        ("volume SOL", {"no_wrap": True}),
        ("curve", {"no_wrap": True}),
        ("mcap", {"justify": "right", "no_wrap": True}),
        ("hold", {"justify": "right", "no_wrap": True}),
        ("dev%", {"justify": "right", "no_wrap": True}),
    )
    for token, count, volume in most:
        volume_bar = bar(volume / top_volume if top_volume else 0.0, bar_width)
        view = model.view(token.mint)
        progress = token.progress if view is None or view.progress is None else view.progress
        curve = "?".ljust(bar_width + 5) if progress is None else f"{bar(progress / 100, bar_width)} {progress:3.0f}%"
        traded.add_row(token.mint, str(count), f"{volume_bar} {volume:8.2f}", curve, *_figures(view))

    grads = _table(
        "graduations",
        ("time", {"no_wrap": True}),
        ("mint", {"no_wrap": True, "min_width": 44, "style": "magenta"}),
        ("symbol", {"no_wrap": True, "overflow": "ellipsis", "max_width": 10}),
        ("liquidity", {"no_wrap": True, "justify": "right"}),
    )
    for ms, mint, liquidity in list(model.graduations)[-n_grad:][::-1]:
        token = model.tokens.get(mint) or Token(mint)
        grads.add_row(_clock(ms), mint, _safe(token.symbol), "-" if liquidity is None else f"{liquidity:,.1f} SOL")
    if not model.graduations:
        grads.add_row("", "(none yet)", "", "")

    health = _table(
        "connections",
        ("source #", {"no_wrap": True}),
        ("state", {"no_wrap": True}),
        ("for", {"justify": "right"}),
        ("last event", {"justify": "right"}),
        ("reconnects", {"justify": "right"}),
        ("heartbeat rtt", {"justify": "right"}),
    )
    for label, c in _connection_rows(stats):
        state = str(c.get("state", "?"))
        style = "green" if state in ("open", "streaming", "connected") else "yellow" if state != "failed" else "red"
        rtt = c.get("last_rtt")
        health.add_row(
            _safe(label, 24),
            Text(state, style=style),
            _age(c.get("state_since"), wall),
            _age(c.get("last_event_at"), wall),
            str(max(0, int(c.get("connects", 0)) - 1)),
            "-" if rtt is None else f"{rtt * 1000:.1f} ms",
        )
    parts: list[RenderableType] = [top, totals, rates, launches, traded]
    if not model.trades_seen and model.trades_hint and model.launches and now - model.started > NO_TRADES_AFTER:
        parts.append(Text(_safe("no trades yet: " + model.trades_hint, width), style="yellow"))
    parts += [grads, health]
    parts += [Text(_safe(note, width), style="yellow") for note in model.notes]
    return Group(*parts)


def _connection_rows(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each connection labelled by its source (several sources: each one's own name), then its index."""
    sources = stats.get("sources")
    if isinstance(sources, dict) and sources:
        return [(f"{name} #{c.get('index', '?')}", c) for name, snap in sources.items() for c in snap["connections"]]
    provider = stats.get("provider", "")
    return [(f"{provider} #{c.get('index', '?')}", c) for c in stats.get("connections", [])]


class _NotesHandler(logging.Handler):
    """Keeps the latest warnings for the screen's foot, through the filters of the handlers it stands in for."""

    def __init__(self, notes: deque[str], replaced: list[logging.Handler]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes
        for handler in replaced:  # the key-redacting filter and the fatal-error filter, say
            for f in handler.filters:
                self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(f"{record.levelname.lower()}: {record.getMessage()}")


def run_top(
    client: Client,
    header: str,
    duration: float | None = None,
    on_event: Callable[[Event], Any] | None = None,
    console: Console | None = None,
    model: TopModel | None = None,
) -> int:
    """Show the view until Ctrl-C, SIGTERM, ``duration`` or a fatal error; the exit status.

    ``client`` must be started. ``on_event`` also sees every event (``demo --record``). Where the
    output is not a terminal (piped, redirected), a plain line every SUMMARY_EVERY seconds and the
    last screen as plain text at the end stand in for the view, and the end of a recording ends it.
    """
    console = console or Console()
    model = model or TopModel(time.monotonic())
    model.trades_hint = _trades_hint(client)
    if not console.is_terminal:
        return _run_plain(client, model, header, duration, on_event, console)
    deadline = None if duration is None else time.monotonic() + duration
    status, message = 0, ""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the view as Ctrl-C does: the screen is restored

    signal.signal(signal.SIGTERM, on_term)
    # Log lines written to the terminal would tear the screen: while it shows, they go to its foot.
    root = logging.getLogger()
    handlers = root.handlers[:]
    root.handlers[:] = [_NotesHandler(model.notes, handlers)]
    try:
        with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
            ended = False
            while deadline is None or time.monotonic() < deadline:
                if ended:  # the last screen stays until Ctrl-C (or the duration)
                    time.sleep(REFRESH)
                else:
                    status, message, ended = _drain(client, model, time.monotonic() + REFRESH, on_event)
                    if ended:
                        model.notes.append("the recording has ended: Ctrl-C to leave")
                now = time.monotonic()
                size = console.size
                live.update(render(model, client.stats(), header, now, size.width, size.height), refresh=True)
                if message:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        root.handlers[:] = handlers
        signal.signal(signal.SIGTERM, previous)
    if status:
        click.echo(f"pumpsync: {message}", err=True)
    return status


def _trades_hint(client: Client) -> str:
    """Why the sources may send no trades, from their specs (several sources: each one that says)."""
    members = getattr(client, "members", None)
    clients = list(members.values()) if isinstance(members, dict) else [client]
    return "; ".join(dict.fromkeys(c.config.spec.trades_hint for c in clients if c.config.spec.trades_hint))


def summary_line(model: TopModel, stats: dict[str, Any], now: float) -> str:
    """One plain line of the figures (a piped or redirected ``top``)."""
    model.expire(now)
    launches = model.launches_per_minute(now, 1)[-1]
    trades = model.trades_per_second(now, 1)[-1]
    conns = _connection_rows(stats)
    up = sum(1 for _, c in conns if c.get("state") in ("open", "streaming", "connected"))
    line = (
        f"{time.strftime('%H:%M:%S')} events {stats.get('delivered', 0)}  launches/min {launches:.0f}  "
        f"trades/s {trades:.1f}  graduations {len(model.graduations)}  connections {up}/{len(conns)} open"
    )
    if not model.trades_seen and model.trades_hint and model.launches and now - model.started > NO_TRADES_AFTER:
        line += f"  (no trades yet: {model.trades_hint})"
    return line


def _run_plain(
    client: Client,
    model: TopModel,
    header: str,
    duration: float | None,
    on_event: Callable[[Event], Any] | None,
    console: Console,
) -> int:
    """``top`` without a terminal: plain summary lines, then the last screen as text; ends with the source."""
    deadline = None if duration is None else time.monotonic() + duration
    status, message, ended = 0, "", False
    next_line = time.monotonic() + SUMMARY_EVERY
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        print(_safe(header), flush=True)
        while not ended and not message and (deadline is None or time.monotonic() < deadline):
            until = min(next_line, deadline if deadline is not None else next_line)
            status, message, ended = _drain(client, model, until, on_event)
            if time.monotonic() >= next_line:
                print(summary_line(model, client.stats(), time.monotonic()), flush=True)
                next_line += SUMMARY_EVERY
        plain = Console(file=sys.stdout, width=max(100, console.width), color_system=None, force_terminal=False)
        plain.print(render(model, client.stats(), header, time.monotonic(), plain.width, 10_000))
        if ended:
            print("the recording has ended", flush=True)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `pumpsync top | head`
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status:
        click.echo(f"pumpsync: {message}", err=True)
    return status


def _drain(
    client: Client, model: TopModel, until: float, on_event: Callable[[Event], Any] | None
) -> tuple[int, str, bool]:
    """Take events until ``until``: (exit status, message of a fatal error, the source has ended)."""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return 0, "", False
        try:
            event = client.get(timeout=left)
        except queue.Empty:
            return 0, "", False
        except EndOfStream:
            return 0, "", True
        except ClientClosed:
            return 0, "closed", False
        except PumpsyncError as exc:
            if not exc.fatal:
                model.notes.append(f"{exc}")  # one channel refused: the others go on
                continue
            return (EXIT_REFUSED if isinstance(exc, ProviderRefused) else EXIT_FATAL), str(exc), False
        model.observe(event, time.monotonic())
        if on_event is not None:
            on_event(event)


@click.command("top")
@client_options
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after SECONDS.")
@click.option("--sort", type=click.Choice(SORTS), default=None, help="Rank the tokens by this market figure.")
@market_options
def top(duration: float | None, sort: str | None, **params: Any) -> None:
    """A live, full-screen view of a stream: launches, trades, graduations, connection health.

    Ctrl-C (or SIGTERM) to stop. Exit status as for `pumpsync stream`. The token table shows the
    market view's figures (pumpsync.Market); --sort and the market filters rank and select its rows.
    """
    try:
        filters = market_filters(params)
        model = TopModel(time.monotonic(), market=make_market(params, filters), sort=sort)
        model.filters = filters
    except ConfigurationError as exc:
        raise configuration_error(exc) from None
    client = make_client(params)
    try:
        status = run_top(
            client.start(),
            f"pumpsync top: {'+'.join(getattr(client, 'members', None) or [client.config.provider])}",
            duration,
            model=model,
        )
    finally:
        client.close()
    raise SystemExit(status)
