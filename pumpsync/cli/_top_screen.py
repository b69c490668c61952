"""``pumpsync top``'s screen: a pure function of the model and ``client.stats()`` (rich renderables)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pumpsync.cli._render import terminal_safe
from pumpsync.cli._top_model import NO_TRADES_AFTER, TRADE_WINDOW, Token, TopModel, bar, sparkline
from pumpsync.market import TokenView


def safe(text: str | None, width: int | None = None) -> str:
    """Provider strings are untrusted: no control characters; cut to ``width``."""
    text = terminal_safe(text or "")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


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
    # Rows left for the three lists (each also has a title and a header line); graduations are rare.
    spare = max(3, height - 12 - len(stats.get("connections", [])) - len(model.notes))
    n_grad = max(1, min(len(model.graduations), spare // 4))
    n_launch = max(1, (spare - n_grad) // 2)
    n_traded = max(1, spare - n_grad - n_launch)
    parts: list[RenderableType] = [
        *_heading(model, stats, header, now, width),
        _launches(model, n_launch),
        _traded(model, n_traded, width),
    ]
    if not model.trades_seen and model.trades_hint and model.launches and now - model.started > NO_TRADES_AFTER:
        parts.append(Text(safe("no trades yet: " + model.trades_hint, width), style="yellow"))
    parts += [_graduations(model, n_grad), _health(stats, time.time())]
    parts += [Text(safe(note, width), style="yellow") for note in model.notes]
    return Group(*parts)


def _heading(model: TopModel, stats: dict[str, Any], header: str, now: float, width: int) -> list[RenderableType]:
    """The header line, the totals and the two sparklines."""
    queue_line = f"queue {stats.get('queue_depth', 0)}/{stats.get('queue_capacity', 0)}"
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
    return [Text(safe(header, width), style="bold"), totals, rates]


def _launches(model: TopModel, rows: int) -> Table:
    launches = _table(
        "newest launches",
        ("time", {"no_wrap": True}),
        ("mint", {"no_wrap": True, "min_width": 44, "style": "cyan"}),
        ("symbol", {"no_wrap": True, "overflow": "ellipsis", "max_width": 10}),
        ("name", {"no_wrap": True, "overflow": "ellipsis"}),
    )
    for ms, mint in list(model.launches)[-rows:][::-1]:
        token = model.tokens.get(mint) or Token(mint)
        launches.add_row(_clock(ms), mint, safe(token.symbol) or "…", safe(token.name))
    return launches


def _traded(model: TopModel, rows: int, width: int) -> Table:
    bar_width = max(3, min(20, (width - 96) // 2))  # what the mint and the figures leave, shared by two bars
    most = model.most_traded(rows)
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
    return traded


def _graduations(model: TopModel, rows: int) -> Table:
    grads = _table(
        "graduations",
        ("time", {"no_wrap": True}),
        ("mint", {"no_wrap": True, "min_width": 44, "style": "magenta"}),
        ("symbol", {"no_wrap": True, "overflow": "ellipsis", "max_width": 10}),
        ("liquidity", {"no_wrap": True, "justify": "right"}),
    )
    for ms, mint, liquidity in list(model.graduations)[-rows:][::-1]:
        token = model.tokens.get(mint) or Token(mint)
        grads.add_row(_clock(ms), mint, safe(token.symbol), "-" if liquidity is None else f"{liquidity:,.1f} SOL")
    if not model.graduations:
        grads.add_row("", "(none yet)", "", "")
    return grads


def _health(stats: dict[str, Any], wall: float) -> Table:
    health = _table(
        "connections",
        ("source #", {"no_wrap": True}),
        ("state", {"no_wrap": True}),
        ("for", {"justify": "right"}),
        ("last event", {"justify": "right"}),
        ("reconnects", {"justify": "right"}),
        ("heartbeat rtt", {"justify": "right"}),
    )
    for label, c in connection_rows(stats):
        state = str(c.get("state", "?"))
        style = "green" if state in ("open", "streaming", "connected") else "yellow" if state != "failed" else "red"
        rtt = c.get("last_rtt")
        health.add_row(
            safe(label, 24),
            Text(state, style=style),
            _age(c.get("state_since"), wall),
            _age(c.get("last_event_at"), wall),
            str(max(0, int(c.get("connects", 0)) - 1)),
            "-" if rtt is None else f"{rtt * 1000:.1f} ms",
        )
    return health


def connection_rows(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each connection labelled by its source (several sources: each one's own name), then its index."""
    sources = stats.get("sources")
    if isinstance(sources, dict) and sources:
        return [(f"{name} #{c.get('index', '?')}", c) for name, snap in sources.items() for c in snap["connections"]]
    provider = stats.get("provider", "")
    return [(f"{provider} #{c.get('index', '?')}", c) for c in stats.get("connections", [])]
