"""Runs the plan: every workload, every client, each in a fresh process, against one simulator."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from pumpsync_bench.clients import CLIENTS, MARKET, NULL, PRODUCT, Feed
from pumpsync_bench.scrape import Scraper, free_addr
from pumpsync_bench.server import BenchError, SimulatorProcess

SETTLE = 0.1  # after the connection is up, so that the consumer is in its loop when the first frame comes
STARTUP = 30.0  # seconds for a worker to connect
WORKLOADS = ("bulk", "paced", "realistic", "soak", "pumpportal", "solana", "fanout")
# The PumpPortal and Solana workloads' clients unless --client names others: websocket-client's two
# designs read Solana's 2-4 KB frames at about 1,500 a second: minutes per run for no new fact.
FEED_CLIENTS = (PRODUCT, "pumpsync-iter", "websockets", "picows", "floor")


@dataclass(frozen=True)
class Workload:
    key: str
    count: int
    rate: float | None  # None: as fast as possible
    latency: bool = False
    warm_at: int | None = None  # soak: note memory here too
    provider: str = "openpump"  # whose frames the simulator sends
    # Pre-encoded frames from the firehose (throughput); False: the simulator, which stamps each
    # frame's send time (latency) or streams more than a prepared buffer should hold (soak).
    firehose: bool = False

    def blast_timeout(self) -> float:
        if self.rate is not None:
            return self.count / self.rate + 30.0
        return 30.0 + self.count / 5_000  # the slowest client reads thousands of events per second


@dataclass(frozen=True)
class Plan:
    events: int = 200_000  # bulk
    soak_events: int = 1_000_000
    seconds: float = 10.0  # paced
    realistic_seconds: float = 5.0
    paced_rate: float = 2_000.0
    realistic_rate: float = 300.0
    repeat: int = 3
    soak_repeat: int = 1
    clients: tuple[str, ...] = tuple(key for key, cls in CLIENTS.items() if cls.available() and key != NULL)
    workloads: tuple[str, ...] = WORKLOADS
    seed: int = 1
    feed_events: int = 50_000  # pumpportal and solana, as fast as possible
    fanout_events: int = 50_000  # fan-out throughput: events into Redis, each read by every consumer
    fanout_consumers: int = 10
    # Clients of the PumpPortal and Solana workloads (None: all of ``clients``); --quick runs fewer.
    feed_clients: tuple[str, ...] | None = FEED_CLIENTS

    def build(self) -> list[Workload]:
        paced, realistic = self.paced_rate, self.realistic_rate
        every = {
            "bulk": Workload("bulk", self.events, None, firehose=True),
            "paced": Workload("paced", max(2, int(paced * self.seconds)), paced, latency=True),
            "realistic": Workload("realistic", max(2, int(realistic * self.realistic_seconds)), realistic),
            # warm: past the client's de-duplication window (200,000 identities by default)
            "soak": Workload("soak", self.soak_events, None, warm_at=self.soak_events // 4),
            # PumpPortal-sized trade frames (a funded key's token_trades), as fast as possible
            "pumpportal": Workload("pumpportal", self.feed_events, None, provider="pumpportal", firehose=True),
            # logsNotification frames: JSON-RPC, then base64 + Borsh per event
            "solana": Workload("solana", self.feed_events, None, provider="solana", firehose=True),
            # the paced phase; the throughput phase's count is fanout_events (see fanout.py)
            "fanout": Workload("fanout", max(2, int(paced * self.seconds)), paced, latency=True),
        }
        return [every[key] for key in self.workloads]

    def repeats(self, workload: Workload) -> int:
        return self.soak_repeat if workload.key == "soak" else self.repeat

    def clients_for(self, workload: Workload) -> tuple[str, ...]:
        """The clients of ``workload``; a firehose workload's capacity run (the null client) first."""
        if workload.key == "fanout":  # pumpsync's own hop; its baseline is pumpsync's direct connection
            return (PRODUCT,) if PRODUCT in self.clients else ()
        clients = tuple(c for c in self.clients if c != NULL and (c != MARKET or workload.key == "bulk"))
        if workload.provider != "openpump" and self.feed_clients is not None:
            clients = tuple(c for c in clients if c in self.feed_clients)
        return (NULL, *clients) if workload.firehose and clients else clients


@dataclass
class Runs:
    """Every run's result, by workload and client, in the order they ran."""

    results: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # workload -> why it did not run

    def add(self, workload: str, client: str, result: dict[str, Any]) -> None:
        self.results.setdefault(workload, {}).setdefault(client, []).append(result)


Progress = Callable[[str], None]


def run_plan(plan: Plan, progress: Progress | None = None) -> Runs:
    from pumpsync_bench import fanout

    say = progress or (lambda _text: None)
    runs = Runs()
    with SimulatorProcess(plan.seed) as sim, fanout.Fanout(plan, sim, say) as hop:
        for workload in plan.build():
            clients = plan.clients_for(workload)
            skipped = hop.unavailable if workload.key == "fanout" else None
            if workload.provider not in sim.urls:
                skipped = f"the simulator has no {workload.provider} provider in this version"
            if skipped or not clients:
                runs.skipped[workload.key] = skipped or "the product is not among the clients"
                say(f"{workload.key}: skipped ({runs.skipped[workload.key]})")
                continue
            total = plan.repeats(workload)
            for rep in range(total):
                for client in clients:  # interleaved, so that drift hits every client alike
                    started = time.monotonic()
                    result = hop.run(workload) if workload.key == "fanout" else run_one(sim, client, workload)
                    runs.add(workload.key, client, result)
                    say(f"{workload.key} {rep + 1}/{total} {client:<14} {_brief(result)} "
                        f"({time.monotonic() - started:.1f} s)")  # fmt: skip
    return runs


def feed_of(sim: SimulatorProcess, workload: Workload) -> Feed:
    keys = tuple(sim.mints) if workload.provider == "pumpportal" else ()
    if not workload.firehose:
        return Feed(workload.provider, sim.urls[workload.provider], keys)
    feed = Feed(workload.provider, sim.firehose[workload.provider], keys)
    # built now, before any clock starts; the capacity client needs its size
    prepared = sim.call("fh_prepare", timeout=120.0, provider=workload.provider, count=workload.count)
    skip = prepared["preamble"] + prepared["answers"] * len(feed.hello())
    return Feed(feed.provider, feed.url, keys, skip, prepared["bytes"])


def worker_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "pumpsync_bench.worker", json.dumps(spec)]


def worker_spec(client: str, feed: Feed, workload: Workload, count: int | None = None) -> dict[str, Any]:
    return {
        "client": client,
        "feed": dataclasses.asdict(feed) | {"keys": list(feed.keys)},
        "count": workload.count if count is None else count,
        "latency": workload.latency,
        "warm_at": workload.warm_at,
        "first_timeout": STARTUP + workload.blast_timeout(),
        "idle_timeout": 10.0,
    }


def run_one(sim: SimulatorProcess, client: str, workload: Workload) -> dict[str, Any]:
    """One client process through one workload; never raises, an ``error`` key says what failed."""
    try:
        spec = worker_spec(client, feed_of(sim, workload), workload)
    except BenchError as exc:
        return {"error": str(exc)}
    metrics_addr = free_addr() if CLIENTS[client].metrics else None
    if metrics_addr is not None:
        spec["metrics_addr"] = metrics_addr
    try:
        sim.call("idle", timeout=10.0)
    except BenchError as exc:
        return {"error": str(exc)}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty client never blocks on it
        proc = subprocess.Popen(worker_command(spec), stdout=subprocess.PIPE, stderr=log)
        scraper: Scraper | None = None
        try:
            await_connection(sim, proc, log, workload.provider, "fh_ready" if workload.firehose else "ready")
            if metrics_addr is not None:
                scraper = Scraper(metrics_addr)
            time.sleep(SETTLE)
            if workload.firehose:
                server = sim.call("fh_blast", timeout=workload.blast_timeout(), provider=workload.provider,
                                  count=workload.count)  # fmt: skip
            else:
                server = sim.call("blast", timeout=workload.blast_timeout(), provider=workload.provider,
                                  count=workload.count, rate=workload.rate)  # fmt: skip
            scraped = scraper.close() if scraper is not None else None  # before the worker shuts its server
            out, _ = proc.communicate(timeout=60.0)
            result = parse_result(out, log)
            result["server"] = {k: server[k] for k in ("frames", "wall_s", "cpu_s", "send_rate") if k in server}
            if scraped is not None:
                result["metrics"] = scraped
            return result
        except (BenchError, subprocess.TimeoutExpired) as exc:
            return {"error": str(exc)}
        finally:
            if scraper is not None:
                scraper.close()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def await_connection(
    sim: SimulatorProcess, proc: subprocess.Popen[bytes], log: IO[bytes], provider: str = "openpump", op: str = "ready"
) -> None:
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            sim.call(op, timeout=0.5, n=1, provider=provider)
            return
        except BenchError as exc:
            if proc.poll() is not None:
                out, _ = proc.communicate()
                raise BenchError(f"client exited before connecting: {parse_result(out, log).get('error')}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"client did not connect within {STARTUP:.0f} s ({exc})") from None


def parse_result(out: bytes | None, log: IO[bytes]) -> dict[str, Any]:
    lines = (out or b"").decode(errors="replace").strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        log.seek(0)
        tail = log.read().decode(errors="replace").strip()[-800:]
        return {"error": f"no result from the client process: {tail or 'no output'}"}
    return result


def _brief(result: dict[str, Any]) -> str:
    if "error" in result and "received" not in result:
        return f"ERROR {result['error']}"
    parts = [f"{result.get('received', 0)} events"]
    if result.get("events_per_s"):
        parts.append(f"{result['events_per_s']:,.0f}/s")
    if result.get("cpu_us_per_event") is not None:
        parts.append(f"{result['cpu_us_per_event']:.1f} us CPU/event")
    if result.get("server", {}).get("send_rate"):
        parts.append(f"server could send {result['server']['send_rate']:,.0f}/s")
    if result.get("latency_us"):
        parts.append(f"p99 {result['latency_us']['p99']:.0f} us")
    if "error" in result:
        parts.append(f"ERROR {result['error']}")
    return ", ".join(parts)
