"""``pumpsync bench``: measure pumpsync and the usual alternatives on this machine."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from pumpsync_bench import CLIENTS, QUICK, QUICK_NOTE, WORKLOADS, BenchError, Plan, benchmark

_WORKLOADS = WORKLOADS


@click.command("bench")
@click.option("--quick", is_flag=True, help="Small counts, one run each: the CI's regression guard (under a minute).")
@click.option("--repeat", type=click.IntRange(min=1), default=None, help="Runs per figure, median taken [3; quick: 1].")
@click.option("--events", type=click.IntRange(min=2), default=None, help="Bulk events [200000; quick: 20000].")
@click.option("--feed-events", type=click.IntRange(min=2), default=None,
              help="Events of the pumpportal and solana workloads [50000; quick: 10000].")  # fmt: skip
@click.option("--soak-events", type=click.IntRange(min=2), default=None, help="Soak events [1000000; quick: 30000].")
@click.option("--soak-repeat", type=click.IntRange(min=1), default=None, help="Soak runs per client [1].")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Length of the paced (latency) runs [10; quick: 1].")  # fmt: skip
@click.option("--realistic-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Length of the realistic (CPU) runs [5; quick: 1].")  # fmt: skip
@click.option("--fanout-events", type=click.IntRange(min=2), default=None,
              help="Fan-out throughput events, each read by every consumer [50000].")  # fmt: skip
@click.option("--fanout-consumers", type=click.IntRange(min=1), default=None,
              help="Fan-out consumers reading the Redis stream [10].")  # fmt: skip
@click.option("--client", "clients", multiple=True, type=click.Choice(list(CLIENTS)),
              help="Only these clients (repeatable) [all; pumpportal, solana: all but websocket-client's; "
                   "quick: pumpsync, websockets, picows].")  # fmt: skip
@click.option("--workload", "workloads", multiple=True, type=click.Choice(_WORKLOADS),
              help="Only these workloads (repeatable) [all].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (every run, medians, targets).")
@click.option("--save", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write that JSON document to FILE.")  # fmt: skip
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
def bench(
    quick: bool,
    repeat: int | None,
    events: int | None,
    feed_events: int | None,
    soak_events: int | None,
    soak_repeat: int | None,
    seconds: float | None,
    realistic_seconds: float | None,
    fanout_events: int | None,
    fanout_consumers: int | None,
    clients: tuple[str, ...],
    workloads: tuple[str, ...],
    as_json: bool,
    save: str | None,
    quiet: bool,
) -> None:
    """Throughput, latency, CPU and memory of pumpsync vs websocket-client, websockets and picows.

    Starts the built-in simulator in its own process, then runs each client in a fresh process
    through each workload and prints the medians, the ratios to the baselines and the targets.
    Workloads: bulk, paced, realistic, soak (OpenPump frames); pumpportal and solana (those
    providers' frames, as fast as possible); fanout (daemon -> Redis -> ten consumers; needs
    redis-server and the redis package, else skipped with the reason).
    Figures are this machine's: close other work first, and compare ratios, not absolutes.
    """
    base = QUICK if quick else Plan()
    changes: dict[str, Any] = {
        "repeat": repeat,
        "events": events,
        "feed_events": feed_events,
        "soak_events": soak_events,
        "soak_repeat": soak_repeat,
        "seconds": seconds,
        "realistic_seconds": realistic_seconds,
        "fanout_events": fanout_events,
        "fanout_consumers": fanout_consumers,
        "clients": tuple(dict.fromkeys(clients)) or None,
        "workloads": tuple(w for w in _WORKLOADS if w in workloads) or None,
    }
    plan = dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
    if clients:  # clients named: the pumpportal and solana workloads run them too
        plan = dataclasses.replace(plan, feed_clients=None)
    progress = None if quiet else (lambda line: click.echo(line, err=True))
    try:
        result = benchmark(plan, progress)
    except BenchError as exc:
        raise click.ClickException(str(exc)) from None
    document = json.dumps(result.to_json(), indent=2) if as_json or save else ""
    if save is not None:
        with open(save, "w", encoding="utf-8") as out:
            out.write(document + "\n")
    click.echo(document if as_json else result.text())
    if quick and not workloads and not quiet:
        click.echo(QUICK_NOTE, err=True)
