"""Runs the plan: every workload, every client, each in a fresh process, against one simulator."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from pumpsync.bench.clients import CLIENTS
from pumpsync.bench.scrape import Scraper, free_addr
from pumpsync.bench.server import BenchError, SimulatorProcess

SETTLE = 0.1  # after the connection is up, so that the consumer is in its loop when the first frame comes
STARTUP = 30.0  # seconds for a worker to connect


@dataclass(frozen=True)
class Workload:
    key: str
    count: int
    rate: float | None  # None: as fast as possible
    latency: bool = False
    warm_at: int | None = None  # soak: note memory here too

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
    clients: tuple[str, ...] = tuple(key for key, cls in CLIENTS.items() if cls.available())
    workloads: tuple[str, ...] = ("bulk", "paced", "realistic", "soak")
    seed: int = 1

    def build(self) -> list[Workload]:
        paced, realistic = self.paced_rate, self.realistic_rate
        every = {
            "bulk": Workload("bulk", self.events, None),
            "paced": Workload("paced", max(2, int(paced * self.seconds)), paced, latency=True),
            "realistic": Workload("realistic", max(2, int(realistic * self.realistic_seconds)), realistic),
            # warm: past the client's de-duplication window (200,000 identities by default)
            "soak": Workload("soak", self.soak_events, None, warm_at=self.soak_events // 4),
        }
        return [every[key] for key in self.workloads]

    def repeats(self, workload: Workload) -> int:
        return self.soak_repeat if workload.key == "soak" else self.repeat


@dataclass
class Runs:
    """Every run's result, by workload and client, in the order they ran."""

    results: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def add(self, workload: str, client: str, result: dict[str, Any]) -> None:
        self.results.setdefault(workload, {}).setdefault(client, []).append(result)


Progress = Callable[[str], None]


def run_plan(plan: Plan, progress: Progress | None = None) -> Runs:
    say = progress or (lambda _text: None)
    runs = Runs()
    with SimulatorProcess(plan.seed) as sim:
        for workload in plan.build():
            total = plan.repeats(workload)
            for rep in range(total):
                for client in plan.clients:  # interleaved, so that drift hits every client alike
                    started = time.monotonic()
                    result = run_one(sim, client, workload)
                    runs.add(workload.key, client, result)
                    say(f"{workload.key} {rep + 1}/{total} {client:<14} {_brief(result)} "
                        f"({time.monotonic() - started:.1f} s)")  # fmt: skip
    return runs


def run_one(sim: SimulatorProcess, client: str, workload: Workload) -> dict[str, Any]:
    """One client process through one workload; never raises, an ``error`` key says what failed."""
    spec = {
        "client": client,
        "url": sim.url,
        "count": workload.count,
        "latency": workload.latency,
        "warm_at": workload.warm_at,
        "first_timeout": STARTUP + workload.blast_timeout(),
        "idle_timeout": 10.0,
    }
    metrics_addr = free_addr() if CLIENTS[client].metrics else None
    if metrics_addr is not None:
        spec["metrics_addr"] = metrics_addr
    try:
        sim.call("idle", timeout=10.0)
    except BenchError as exc:
        return {"error": str(exc)}
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty client never blocks on it
        proc = subprocess.Popen(
            [sys.executable, "-m", "pumpsync.bench.worker", json.dumps(spec)], stdout=subprocess.PIPE, stderr=log
        )
        scraper: Scraper | None = None
        try:
            _await_connection(sim, proc, log)
            if metrics_addr is not None:
                scraper = Scraper(metrics_addr)
            time.sleep(SETTLE)
            server = sim.call("blast", timeout=workload.blast_timeout(), count=workload.count, rate=workload.rate)
            scraped = scraper.close() if scraper is not None else None  # before the worker shuts its server
            out, _ = proc.communicate(timeout=60.0)
            result = _parse(out, log)
            result["server"] = {k: server[k] for k in ("frames", "wall_s", "cpu_s")}
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


def _await_connection(sim: SimulatorProcess, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + STARTUP
    while True:
        try:
            sim.call("ready", timeout=0.5, n=1)
            return
        except BenchError as exc:
            if proc.poll() is not None:
                out, _ = proc.communicate()
                raise BenchError(f"client exited before connecting: {_parse(out, log).get('error')}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"client did not connect within {STARTUP:.0f} s ({exc})") from None


def _parse(out: bytes, log: IO[bytes]) -> dict[str, Any]:
    lines = out.decode(errors="replace").strip().splitlines()
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
    if result.get("latency_us"):
        parts.append(f"p99 {result['latency_us']['p99']:.0f} us")
    if "error" in result:
        parts.append(f"ERROR {result['error']}")
    return ", ".join(parts)
