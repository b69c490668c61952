"""``pumpsync bench``: pumpsync against the clients people would pick instead, on your machine.

The simulator runs in a process of its own (:mod:`pumpsync_bench.server`); every measured
run starts a fresh client process (:mod:`pumpsync_bench.worker`) that reports one JSON
object. Workloads: bulk (as fast as possible), paced (latency), realistic (CPU at a busy
Pump.fun rate), soak (memory and threads), pumpportal and solana (bulk through those providers'
frames), fanout (the Redis hop, :mod:`pumpsync_bench.fanout`). Each figure is the median of
``repeat`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pumpsync_bench import machine
from pumpsync_bench.clients import CLIENTS, PRODUCT
from pumpsync_bench.report import (
    Summary,
    fanout_lines,
    ratio_lines,
    ratios,
    summarize,
    table,
    target_lines,
    targets,
    verdict_lines,
    verdicts,
)
from pumpsync_bench.runner import WORKLOADS, Plan, Progress, Runs, run_plan
from pumpsync_bench.server import BenchError

# --quick: the PumpPortal and Solana workloads with three clients (product, the asyncio library, the
# ceiling); no fan-out (a redis-server, a daemon and ten consumer processes: about 15 s on its own).
QUICK = Plan(
    events=20_000,
    feed_events=10_000,
    soak_events=30_000,
    seconds=1.0,
    realistic_seconds=1.0,
    repeat=1,
    soak_repeat=1,
    workloads=tuple(w for w in WORKLOADS if w != "fanout"),
    feed_clients=(PRODUCT, "websockets", "picows"),
    fanout_events=3_000,
)
QUICK_NOTE = "--quick leaves out the fanout workload (Redis, a daemon, ten consumers): pumpsync bench --workload fanout"
BUSY = 0.25  # share of the CPUs used by others that makes the figures doubtful


@dataclass
class Result:
    plan: Plan
    runs: Runs
    machine: dict[str, Any]
    seconds: float
    summary: Summary = field(init=False)

    def __post_init__(self) -> None:
        self.summary = summarize(self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.__dict__,
            "machine": self.machine,
            "seconds": round(self.seconds, 1),
            "product": PRODUCT,
            "summary": self.summary,
            "ratios": ratios(self.plan, self.summary),
            "targets": [t.__dict__ for t in targets(self.summary)],
            "capacity": {w: {**v.__dict__, "judged": v.judged} for w, v in verdicts(self.summary).items()},
            "skipped": self.runs.skipped,
            "runs": self.runs.results,
        }

    def text(self) -> str:
        plan, m = self.plan, self.machine
        repeats = f"median of {plan.repeat}" + (f" (soak: {plan.soak_repeat})" if "soak" in plan.workloads else "")
        lines = [
            f"pumpsync bench: simulator and each client in processes of their own; {repeats}; "
            f"paced runs last {plan.seconds:g} s, {plan.realistic_rate:g}/s runs {plan.realistic_seconds:g} s; "
            f"{self.seconds:.0f} s in all",
            f"machine: {machine.summary_line(m)}",
        ]
        busy = [b for b in (m.get("busy_before"), m.get("busy_after")) if b is not None]
        if busy:
            load = f"; load average {m['load_average']:g}" if m.get("load_average") is not None else ""
            lines.append(f"CPU used by other processes: {busy[0]:.0%} before, {busy[-1]:.0%} after the run{load}")
            if max(busy) > BUSY:
                lines.append("WARNING: the machine was busy; every figure below is disturbed by other processes")
        lines += ["", table(plan, self.summary), ""]
        lines.append("* the product: pumpsync Client + client.queue.get(), its metrics server scraped every second")
        lines.append("  from another process, as Prometheus would. Every client parses each event")
        lines.append("  (baselines: json.loads).")
        if any(w in plan.workloads for w in ("bulk", "pumpportal", "solana")):
            lines.append("  bulk, pumpportal, solana: the firehose sends the simulator's frames pre-encoded")
            lines.append("  (built before the clock starts) in ~1 MiB writes; paced, realistic, soak: the simulator.")
        if "pumpportal" in plan.workloads:
            lines.append("  pumpportal: trade frames of a funded key's token_trades subscription.")
        if "solana" in plan.workloads:
            lines.append("  solana: logsNotification frames; pumpsync decodes every field (Borsh, base58 keys),")
            lines.append("  the baselines base64 + one struct.unpack of the trade's leading fields (keys left bytes);")
            lines.append("  no latency: the simulator stamps the JSON-RPC envelope, which decoded events do not keep.")
        if "fanout" in plan.workloads:
            lines.append("  fan-out: the product only (its reference: its direct connection); redis-server in memory.")
        for workload, why in self.runs.skipped.items():
            lines.append(f"not measured: {workload} ({why})")
        failed = [(w, c, r["error"]) for w, by in self.runs.results.items() for c, rs in by.items() for r in rs
                  if "error" in r]  # fmt: skip
        for workload, client, error in failed:
            lines.append(f"failed run: {workload} {client}: {error}")
        for key, cls in CLIENTS.items():
            if key not in plan.clients and not cls.available():
                missing = f"{cls.requires} is not installed: pip install 'pumpsync[bench]'"
                lines.append(f"not measured: {cls.label} ({missing})")
        capacity = verdict_lines(self.summary, self.runs)
        lines += ["", *capacity] if capacity else []
        extra = ratio_lines(plan, self.summary)
        lines += ["", *extra] if extra else []
        hop = fanout_lines(plan, self.summary)
        lines += ["", *hop] if hop else []
        lines += ["", *target_lines(self.summary)] if PRODUCT in plan.clients else []
        return "\n".join(lines)


def benchmark(plan: Plan, progress: Progress | None = None) -> Result:
    """Run ``plan``; raises :class:`BenchError` only if the simulator cannot run at all."""
    started = time.monotonic()
    info = machine.describe()
    info["busy_before"] = machine.busy_fraction()
    runs = run_plan(plan, progress)
    info["busy_after"] = machine.busy_fraction()
    return Result(plan, runs, info, time.monotonic() - started)


__all__ = ["CLIENTS", "PRODUCT", "QUICK", "QUICK_NOTE", "WORKLOADS", "BenchError", "Plan", "Result", "benchmark"]
