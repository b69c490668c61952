"""``pumpsync demo``: the simulator and a client in one process, a live feed on the terminal."""

from __future__ import annotations

import importlib.util
import itertools
import queue
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pumpsync._sources import Source
from pumpsync.cli._options import setup_logging
from pumpsync.cli._render import terminal_width, to_text
from pumpsync.cli.top import run_top
from pumpsync.client import Client
from pumpsync.errors import ConfigurationError, PumpsyncError
from pumpsync.events import Event
from pumpsync.providers import PROVIDERS
from pumpsync.simulator.simulator import SERVERS, Simulator

if TYPE_CHECKING:
    from pumpsync.daemon.sinks.base import Sink

# Providers with both a client module and a simulated server that can run here (its extra installed).
_DEMO_PROVIDERS = [name for name in PROVIDERS if name in SERVERS and SERVERS[name].available]
# --race: how late and lossy each simulated provider is, by position (delay range in s, loss).
# Overlapping ranges, so that no source always wins.
_RACE_FEEDS = [((0.02, 0.15), 0.03), ((0.05, 0.12), 0.01), ((0.0, 0.3), 0.08), ((0.1, 0.2), 0.02)]


@click.command()
@click.option(
    "--provider",
    type=click.Choice(_DEMO_PROVIDERS),
    default="anaxer",
    show_default=True,
    help="The simulated provider to watch (`pumpsync --help` says what each is).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=6.0,
    show_default=True,
    help="Simulated market events per second.",
)
@click.option("--seed", type=int, default=None, help="Market seed [random].")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    envvar="PUMPSYNC_DEMO_DURATION",  # CI bounds the README's `pumpsync demo` line without editing it
    help="Stop after SECONDS (or $PUMPSYNC_DEMO_DURATION) [run until Ctrl-C].",
)
@click.option(
    "--metrics-addr",
    default="127.0.0.1:9108",
    show_default=True,
    help="Serve Prometheus metrics here ('off' to disable).",
)
@click.option(
    "--race",
    is_flag=True,
    help="Every simulated provider at once, from one market, each late and lossy its own way: "
    "one stream, each event once, and who was first.",
)
@click.option("--plain", is_flag=True, help="One line per event, even on a terminal (the default when piped).")
@click.option(
    "--record",
    metavar="FILE",
    default=None,
    help="Also record the events: JSON Lines, or SQLite if FILE ends in .db/.sqlite/.sqlite3 "
    "(replay with --provider replay --url file:FILE).",
)
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug (logs go to stderr).")
def demo(
    provider: str,
    rate: float,
    seed: int | None,
    duration: float | None,
    metrics_addr: str,
    plain: bool,
    record: str | None,
    race: bool,
    verbose: int,
) -> None:
    """Watch a live (simulated) Pump.fun feed: no API key, no network. Ctrl-C to stop.

    On a terminal it is the live view of `pumpsync top`; piped (or with --plain), one line per event.
    """
    setup_logging(verbose)
    recorder = _recorder(record) if record else None
    seed = seed if seed is not None else int(time.time())
    providers = tuple(_DEMO_PROVIDERS) if race else (provider,)
    with Simulator(providers=providers, port=0, rate=rate, seed=seed) as sim:
        client = _client(sim, providers, race)
        metrics = _serve_metrics(client, metrics_addr)
        if race:
            click.echo(f"pumpsync demo: one market, {len(providers)} sources (seed {seed})", err=True)
        else:
            click.echo(f"pumpsync demo: simulated {provider} stream at {sim.url(provider)} (seed {seed})", err=True)
        if metrics is not None:
            click.echo(f"pumpsync demo: metrics at http://{metrics}/metrics", err=True)
        click.echo("pumpsync demo: Ctrl-C to stop", err=True)
        on_event = None if recorder is None else recorder.offer
        try:
            if plain or not sys.stdout.isatty():
                shown = _feed(client.start(), duration, on_event)
            else:
                where = f"one market, {'+'.join(providers)}" if race else f"simulated {provider} at {sim.url(provider)}"
                header = f"pumpsync demo: {where} (seed {seed}); Ctrl-C to stop"
                run_top(client.start(), header, duration, on_event)
                shown = client.stats()["delivered"]
        finally:
            client.close()
            if metrics is not None:
                metrics.close()
            if recorder is not None:
                recorder.close(time.monotonic() + 10.0)
                recorder.join(10.0)
    _report(client, shown, recorder, record)


def _client(sim: Simulator, providers: tuple[str, ...], race: bool) -> Client:
    """The demo's client of the simulator: one source, or (``--race``) every provider, each fed late and thinned."""
    if not race:
        (provider,) = providers
        return Client(provider, api_key="demo", url=sim.url(provider), channels=_channels(provider))  # type: ignore[arg-type]
    for name, (delay, loss) in zip(providers, itertools.cycle(_RACE_FEEDS)):
        sim.set_feed(name, delay=delay, loss=loss)
        click.echo(
            f"pumpsync demo: simulated {name} at {sim.url(name)}, {delay[0] * 1000:.0f}-{delay[1] * 1000:.0f}"
            f" ms late, {loss:.0%} lost",
            err=True,
        )
    return Client(
        sources=[Source(name, api_key="demo", url=sim.url(name), channels=_channels(name)) for name in providers]
    )


def _report(client: Client, shown: int, recorder: Sink | None, record: str | None) -> None:
    """The closing lines: what was shown, suppressed, dropped, recorded, and who won the race."""
    stats = client.stats()
    click.echo(
        f"pumpsync demo: {shown} events shown, {stats['duplicates']} duplicates suppressed, {stats['dropped']} dropped",
        err=True,
    )
    if recorder is not None:
        click.echo(f"pumpsync demo: {recorder.written} events recorded in {record}", err=True)
    if client.race is not None:
        click.echo(f"pumpsync demo: {client.race.summary()}", err=True)


def _channels(provider: str) -> dict[str, dict[str, Any]] | None:
    spec = PROVIDERS[provider]
    return {name: {} for name in spec.demo_channels or spec.default_channels} or None


def _recorder(path: str) -> Sink:
    """A sink (its own thread, as in the daemon) that writes what the demo shows, for replay."""
    from pumpsync.daemon.sinks import build_sinks

    kind = "sqlite" if path.lower().endswith((".db", ".sqlite", ".sqlite3")) else "jsonl"
    try:
        (sink,) = build_sinks([{"type": kind, "path": path, "buffer": 1_000_000}])
        sink.start()
    except (ConfigurationError, OSError, sqlite3.Error) as exc:
        raise click.BadParameter(f"cannot record to {path}: {exc}", param_hint="'--record'") from None
    return sink


def _feed(client: Client, duration: float | None, on_event: Callable[[Event], Any] | None = None) -> int:
    deadline = None if duration is None else time.monotonic() + duration
    shown = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                event = client.get(timeout=0.25)
            except queue.Empty:
                continue
            except PumpsyncError as exc:
                click.echo(f"pumpsync demo: {exc}", err=True)
                if exc.fatal:
                    break
                continue
            if on_event is not None:
                on_event(event)
            sys.stdout.write(to_text(event, terminal_width(sys.stdout)) + "\n")
            sys.stdout.flush()
            shown += 1
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return shown


def _serve_metrics(client: Client, addr: str) -> Any:
    if addr.lower() in ("off", "none", "") or importlib.util.find_spec("pumpsync.metrics") is None:
        return None
    from pumpsync.metrics import start_metrics_server

    try:
        server = start_metrics_server(client, addr)
    except OSError as exc:
        click.echo(f"pumpsync demo: metrics not served on {addr}: {exc.strerror}", err=True)
        return None
    host = addr.rpartition(":")[0] or "127.0.0.1"
    return _Served(server, f"{host}:{server.port}")


class _Served:
    def __init__(self, server: Any, where: str) -> None:
        self.server = server
        self.where = where

    def close(self) -> None:
        self.server.close()

    def __str__(self) -> str:
        return self.where
