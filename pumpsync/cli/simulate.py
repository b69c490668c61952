"""``pumpsync simulate``: serve the built-in simulator until Ctrl-C or ``--duration``."""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import click

from pumpsync.simulator import MALFORMED_KINDS, Simulator
from pumpsync.simulator.simulator import PROVIDERS as SIMULATED
from pumpsync.simulator.simulator import SERVERS

_Action = Callable[[Simulator], Any]


def _close_spec(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, int] | None:
    """``SECONDS:CODE``, e.g. ``30:1011``."""
    if value is None:
        return None
    seconds, sep, code = value.partition(":")
    try:
        every, close_code = float(seconds), int(code)
    except ValueError:
        every, close_code = -1.0, 0
    if not sep or every <= 0 or not (1000 <= close_code < 5000):
        raise click.BadParameter(f"{value!r} is not SECONDS:CODE (e.g. 30:1011)")
    return every, close_code


def _key_specs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str] | None:
    """Repeated ``KEY=PLAN``."""
    keys: dict[str, str] = {}
    for item in value:
        key, sep, plan = item.partition("=")
        if not sep or not key or plan not in ("free", "pro", "enterprise"):
            raise click.BadParameter(f"{item!r} is not KEY=PLAN with PLAN one of free, pro, enterprise")
        keys[key] = plan
    return keys or None


@dataclass
class _Every:
    interval: float
    action: _Action
    due: float = 0.0


def _schedule(
    drop_every: float | None,
    stall_every: float | None,
    malformed_every: float | None,
    close_every: tuple[float, int] | None,
    seed: int,
) -> list[_Every]:
    rng = random.Random(seed)
    jobs: list[_Every] = []
    if drop_every:
        jobs.append(_Every(drop_every, lambda sim: sim.drop()))
    if stall_every:
        # Half-open the newest connection of each provider. The previous victims are released
        # first: a server only notices that a client left once it reads again, and stale
        # half-open sockets would otherwise pile up against the plan's connection limit.
        def stall(sim: Simulator) -> None:
            sim.unstall()
            for provider in sim.providers:
                conns = sim.connections(provider)
                if conns:
                    sim.stall(provider, conns[-1].index)

        jobs.append(_Every(stall_every, stall))
    if malformed_every:
        jobs.append(_Every(malformed_every, lambda sim: sim.send_malformed(rng.choice(MALFORMED_KINDS))))
    if close_every:
        every, code = close_every
        jobs.append(_Every(every, lambda sim: sim.close(code, "injected by pumpsync simulate")))
    return jobs


def _run(sim: Simulator, jobs: list[_Every], duration: float | None, stop: threading.Event) -> None:
    start = time.monotonic()
    for job in jobs:
        job.due = start + job.interval
    while not stop.is_set():
        now = time.monotonic()
        if duration is not None and now - start >= duration:
            return
        for job in jobs:
            if now >= job.due:
                job.due = now + job.interval
                try:
                    job.action(sim)
                except Exception as exc:  # a fault that could not be applied must not end the run
                    click.echo(f"fault injection failed: {exc}", err=True)
        next_due = min([j.due for j in jobs] + ([start + duration] if duration is not None else []), default=now + 0.5)
        stop.wait(max(0.01, min(0.5, next_due - now)))


_positive = click.FloatRange(min=0, min_open=True)


@click.command("simulate")
@click.option(
    "--provider",
    type=click.Choice([*SIMULATED, "both", "all"]),
    default="both",
    show_default=True,
    help="One provider; both = openpump and anaxer; all = every simulated provider.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it local).")
@click.option(
    "--port",
    type=click.IntRange(0, 65534),
    default=0,
    show_default=True,
    help="0 = free ports; with both providers anaxer uses PORT+1.",
)
@click.option(
    "--rate", type=click.FloatRange(min=0), default=20.0, show_default=True, help="Market events per second (0 = none)."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Market seed: the same seed, the same market.")
@click.option(
    "--anaxer-form",
    type=click.Choice(["auto", "v1", "document"]),
    default="auto",
    show_default=True,
    help="Anaxer's frames: v1 (the SDK's), document (the documented form), auto (v1's greeting, then each "
    "client's form by its first subscribe).",
)
@click.option(
    "--enrich-delay",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds between a launch and its token_enriched event (OpenPump).",
)
@click.option(
    "--history-limit",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Records each feed keeps for REST backfill (older ones are forgotten).",
)
@click.option("--duration", type=_positive, default=None, help="Seconds to run (default: until Ctrl-C).")
@click.option(
    "--key",
    "keys",
    multiple=True,
    callback=_key_specs,
    metavar="KEY=PLAN",
    help="Only accept these keys (repeatable KEY=PLAN); default: any key.",
)
@click.option("--drop-every", type=_positive, default=None, metavar="SECONDS", help="Abort all connections.")
@click.option(
    "--stall-every",
    type=_positive,
    default=None,
    metavar="SECONDS",
    help="Half-open the newest connection of each provider.",
)
@click.option(
    "--malformed-every",
    type=_positive,
    default=None,
    metavar="SECONDS",
    help="Send a random malformed frame to all connections.",
)
@click.option(
    "--close-every", default=None, callback=_close_spec, metavar="SECONDS:CODE", help="Close all connections with CODE."
)
@click.option(
    "--reject-first",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Answer the first N connection attempts with HTTP 503.",
)
def simulate(
    provider: str,
    host: str,
    port: int,
    rate: float,
    seed: int,
    anaxer_form: Any,
    enrich_delay: float,
    history_limit: int,
    duration: float | None,
    keys: dict[str, str] | None,
    drop_every: float | None,
    stall_every: float | None,
    malformed_every: float | None,
    close_every: tuple[float, int] | None,
    reject_first: int,
) -> None:
    """Serve simulated provider streams (and their REST history, where they have one) locally."""
    sim = Simulator(
        providers=provider,
        host=host,
        port=port,
        rate=rate,
        seed=seed,
        keys=keys,
        anaxer_form=anaxer_form,
        enrich_delay=enrich_delay,
        history_limit=history_limit,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed first, so that a Ctrl-C during start-up still ends with a clean exit 0.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            sim.start()
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
        if reject_first:
            sim.reject_next(reject_first)
        for name in sim.providers:
            click.echo(f"{name} {sim.url(name)}")
            if SERVERS[name].rest:
                click.echo(f"{name}-rest {sim.rest_url(name)}")
        sys.stdout.flush()  # a parent process waits for these lines
        _run(sim, _schedule(drop_every, stall_every, malformed_every, close_every, seed), duration, stop)
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
