"""``pumpsync top``: a full-screen, refreshing view of a live stream (also ``pumpsync demo``'s default).

It reads what any user code can read: events from ``client.get()`` and counters from
``client.stats()``. :class:`~pumpsync.cli._top_model.TopModel` keeps the figures (no terminal
needed: tests feed it events), :func:`~pumpsync.cli._top_screen.render` draws them; :func:`run_top`
drives a :class:`rich.live.Live` screen with both.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from pumpsync.cli._market_options import make_market, market_filters, market_options
from pumpsync.cli._options import client_options, configuration_error, make_client
from pumpsync.cli._top_model import NO_TRADES_AFTER, TopModel
from pumpsync.cli._top_screen import connection_rows, render, safe
from pumpsync.client import Client
from pumpsync.errors import ClientClosed, ConfigurationError, EndOfStream, ProviderRefused, PumpsyncError
from pumpsync.events import Event
from pumpsync.market import SORTS

SUMMARY_EVERY = 10.0  # seconds between the plain lines of a piped or redirected `top`
REFRESH = 0.5  # seconds between screen updates
EXIT_REFUSED, EXIT_FATAL = 3, 1


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
    conns = connection_rows(stats)
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
        print(safe(header), flush=True)
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
