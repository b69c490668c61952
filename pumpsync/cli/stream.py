"""``pumpsync stream``: print events as they arrive."""

from __future__ import annotations

import queue
import signal
import sys
import time
from types import FrameType
from typing import Any

import click

from pumpsync.cli._market_options import make_market, market_filters, market_options
from pumpsync.cli._options import client_options, configuration_error, make_client
from pumpsync.cli._render import terminal_width, to_json_line, to_text
from pumpsync.client import Client
from pumpsync.errors import (
    AllSourcesFailed,
    ClientClosed,
    ConfigurationError,
    ProviderRefused,
    PumpsyncError,
    SourceFailed,
    SubscriptionRejected,
)
from pumpsync.market import Market

EXIT_REFUSED = 3  # the provider refused the key or the plan
EXIT_FATAL = 1


@click.command()
@client_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
    help="text: one line per event (time, provider, kind, full mint, details); jsonl: one event.to_dict() per line.",
)
@click.option("--count", type=click.IntRange(min=1), default=None, help="Stop after this many events.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop after SECONDS.")
@market_options
def stream(fmt: str, count: int | None, duration: float | None, **params: Any) -> None:
    """Stream events to stdout (text, or one JSON object per line); logs go to stderr.

    Exit status: 0 on a normal end (count or duration reached, Ctrl-C), 3 when the provider
    refuses the key or the plan, 1 on other fatal errors. With several --source, a source that
    fails is reported and the others go on; the race summary is printed at the end. Market filters
    (--min-mc-usd, --max-age, ...) print only the events of the mints that pass them, as the market
    view (pumpsync.Market) sees them from this stream.
    """
    try:
        filters = market_filters(params)
        market: Market | None = make_market(params, filters)  # takes its options out of params
        if not filters:
            market = None
    except ConfigurationError as exc:
        raise configuration_error(exc) from None
    client = make_client(params)
    render = to_json_line if fmt == "jsonl" else lambda event: to_text(event, terminal_width(sys.stdout))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd, docker stop: end as Ctrl-C does, cleanly
    if market is not None:
        render = _filtered(render, market, filters)
    sys.exit(_run(client, render, count, duration))


def _filtered(render: Any, market: Market, filters: dict[str, Any]) -> Any:
    def render_passing(event: Any) -> str | None:
        market.update(event)
        return render(event) if market.matches(event.mint, **filters) else None

    return render_passing


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run(client: Client, render: Any, count: int | None, duration: float | None) -> int:
    deadline = None if duration is None else time.monotonic() + duration
    out = sys.stdout
    seen = 0
    client.start()
    try:
        while count is None or seen < count:
            wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if wait <= 0:
                break
            try:
                event = client.get(timeout=wait)
            except queue.Empty:
                continue
            except SubscriptionRejected:
                continue  # the client has logged it (one warning line); the other channels go on
            except SourceFailed as exc:  # the other sources go on
                click.echo(f"pumpsync: {exc}", err=True)
                continue
            line = render(event)
            if line is None:  # filtered out by the market view
                continue
            out.write(line + "\n")
            out.flush()
            seen += 1
    except (KeyboardInterrupt, ClientClosed):  # Ctrl-C, SIGTERM; the end of a replayed recording
        pass
    except ProviderRefused as exc:
        click.echo(f"pumpsync: {exc}", err=True)
        return EXIT_REFUSED
    except AllSourcesFailed as exc:
        click.echo(f"pumpsync: {exc}", err=True)
        refused = all(isinstance(e, ProviderRefused) for e in exc.errors.values())
        return EXIT_REFUSED if refused else EXIT_FATAL
    except PumpsyncError as exc:
        click.echo(f"pumpsync: {exc}", err=True)
        return EXIT_FATAL
    except BrokenPipeError:  # `pumpsync stream | head`
        pass
    finally:
        client.close()
        if client.race is not None:  # several sources: who was first, who missed what
            click.echo(f"pumpsync: {client.race.summary()}", err=True)
    return 0
