"""From runs to figures: medians per client, the table, ratios to the baselines, the targets."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from pumpsync_bench.clients import CLIENTS, ITERATOR, MARKET, NULL, PRODUCT
from pumpsync_bench.runner import Plan, Runs

Summary = dict[str, dict[str, dict[str, float]]]  # workload -> client -> figure -> median
MB = 1024 * 1024
SERVER_BOUND = 0.9  # a client at this share of the server's send rate measured the server
CAPACITY = 2.0  # the null client must read this many times the fastest real client's rate
FIREHOSE = ("bulk", "pumpportal", "solana")  # pre-encoded frames, a capacity run each


def server_bound(run: dict[str, Any]) -> bool:
    """The client read at 90 % or more of what the server could send: the run measured the server."""
    rate, send = run.get("events_per_s"), run.get("server", {}).get("send_rate")
    return bool(rate and send and rate >= SERVER_BOUND * send)


def figures(workload: str, run: dict[str, Any]) -> dict[str, float]:
    """The figures one run gives for its workload (derived ones computed per run, before the median)."""
    if workload in ("bulk", "pumpportal", "solana"):
        return {"events_per_s": run["events_per_s"], "cpu_us_per_event": run["cpu_us_per_event"]}
    if workload == "fanout":
        hop, direct = run["latency_us"], run["direct"]["latency_us"]
        out = {"p50": hop["p50"], "p99": hop["p99"], "direct_p50": direct["p50"], "direct_p99": direct["p99"],
               "events_per_s": run["events_per_s"], "per_consumer_per_s": run["events_per_s_per_consumer"]}  # fmt: skip
        if run.get("in_events_per_s"):
            out["in_events_per_s"] = run["in_events_per_s"]
        cpu = [r["cpu_us_per_event"] for r in run["latency_runs"] if r.get("cpu_us_per_event") is not None]
        if cpu:
            out["consumer_cpu_us_per_event"] = median(cpu)
        return out
    if workload == "paced":
        return {**run["latency_us"], "cpu_pct": run["cpu_pct"]}
    if workload == "realistic":
        return {"cpu_pct": run["cpu_pct"], "cpu_us_per_event": run["cpu_us_per_event"]}
    start, end = run["rss_start"], run["rss_end"]
    warm = run.get("rss_warm", start)
    return {
        "events_per_s": run["events_per_s"],
        "rss_start_mb": start / MB,
        "rss_warm_mb": warm / MB,
        "rss_end_mb": end / MB,
        "rss_growth_pct": 100.0 * (end - start) / start,
        "rss_steady_growth_pct": 100.0 * (end - warm) / warm,
        "threads_start": run["threads_start"],
        "threads_end": run["threads_end"],
    }


def summarize(runs: Runs) -> Summary:
    """Medians of the runs that completed and did not measure the server; ``runs``, ``failed`` and
    ``server_bound`` say how many of each. Firehose workloads also get the server's median send rate."""
    out: Summary = {}
    for workload, by_client in runs.results.items():
        for client, results in by_client.items():
            done = [r for r in results if "error" not in r and r.get("events_per_s")]
            bound = [r for r in done if client != NULL and server_bound(r)]
            good = [figures(workload, r) for r in done if r not in bound]
            row: dict[str, float] = {"runs": len(good), "failed": len(results) - len(done),
                                     "server_bound": len(bound)}  # fmt: skip
            for name in good[0] if good else ():
                row[name] = median(g[name] for g in good)
            sends = [r["server"]["send_rate"] for r in done if r.get("server", {}).get("send_rate")]
            if sends:
                row["server_send_rate"] = median(sends)
            out.setdefault(workload, {})[client] = row
    return out


@dataclass(frozen=True)
class Verdict:
    """Whether a firehose workload's figures are the clients': the capacity run against the fastest."""

    workload: str
    capacity: float | None  # the null client's events/s
    fastest: str | None  # the fastest real client
    fastest_rate: float | None
    send_rate: float | None  # the server's median send rate (frames per CPU second of its sender)

    @property
    def judged(self) -> bool:
        return bool(self.capacity and self.fastest_rate and self.capacity >= CAPACITY * self.fastest_rate)

    def line(self) -> str:
        send = "-" if self.send_rate is None else f"{self.send_rate:,.0f}/s"
        cap = "-" if self.capacity is None else f"{self.capacity:,.0f}/s"
        if self.fastest is None or self.fastest_rate is None:
            return f"  {self.workload}: server could send {send}, capacity {cap}; no real client measured"
        times = f"{self.capacity / self.fastest_rate:.1f}x" if self.capacity else "-"
        head = (f"  {self.workload}: server could send {send}; capacity (null client) {cap} = {times} the fastest "
                f"client ({CLIENTS[self.fastest].label}, {self.fastest_rate:,.0f}/s): ")  # fmt: skip
        if self.judged:
            return head + "the clients are measured"
        return head + f"CANNOT JUDGE (below {CAPACITY:g}x): this workload's ratios and targets are left out"


def verdicts(summary: Summary) -> dict[str, Verdict]:
    out: dict[str, Verdict] = {}
    for workload in FIREHOSE:
        rows = summary.get(workload)
        if not rows:
            continue
        real = {c: r["events_per_s"] for c, r in rows.items() if c != NULL and "events_per_s" in r}
        fastest = max(real, key=real.__getitem__) if real else None
        sends = [r["server_send_rate"] for r in rows.values() if "server_send_rate" in r]
        out[workload] = Verdict(workload, rows.get(NULL, {}).get("events_per_s"), fastest,
                                real.get(fastest) if fastest else None, median(sends) if sends else None)  # fmt: skip
    return out


def judged(summary: Summary) -> Summary:
    """``summary`` without the firehose workloads the capacity run cannot vouch for."""
    cannot = {w for w, v in verdicts(summary).items() if not v.judged}
    return {w: rows for w, rows in summary.items() if w not in cannot}


def verdict_lines(summary: Summary, runs: Runs) -> list[str]:
    found = verdicts(summary)
    if not found:
        return []
    lines = ["Server capacity (pre-encoded frames, ~1 MiB writes; a run at >= 90 % of the server's send rate is "
             "server-bound and left out):"]  # fmt: skip
    lines += [v.line() for v in found.values()]
    for workload, rows in summary.items():
        for client, row in rows.items():
            if row.get("server_bound"):
                lines.append(f"  server-bound, left out: {workload} {CLIENTS[client].label}, "
                             f"{row['server_bound']:.0f} of {len(runs.results[workload][client])} run(s)")  # fmt: skip
    return lines


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Column:
    group: str
    header: str
    workload: str
    render: Callable[[dict[str, float]], str]


def _num(name: str, fmt: str) -> Callable[[dict[str, float]], str]:
    return lambda row: fmt.format(row[name]) if name in row else "-"


def _span(a: str, b: str, fmt: str) -> Callable[[dict[str, float]], str]:
    return lambda row: f"{fmt.format(row[a])}->{fmt.format(row[b])}" if a in row else "-"


def _throughput(plan: Plan, workload: str) -> list[Column]:
    title = f"{workload} {plan.events if workload == 'bulk' else plan.feed_events:,}"
    return [
        Column(title, "events/s", workload, _num("events_per_s", "{:,.0f}")),
        Column(title, "CPU us/ev", workload, _num("cpu_us_per_event", "{:.1f}")),
    ]


def columns(plan: Plan) -> list[Column]:
    paced = f"paced {plan.paced_rate:g}/s, latency us"
    soak = f"soak {plan.soak_events:,}"
    hop = f"fan-out {plan.paced_rate:g}/s x{plan.fanout_consumers}, us; ev/s"
    every = [
        *_throughput(plan, "bulk"),
        Column(paced, "p50", "paced", _num("p50", "{:,.0f}")),
        Column(paced, "p99", "paced", _num("p99", "{:,.0f}")),
        Column(paced, "p99.9", "paced", _num("p99_9", "{:,.0f}")),
        Column(paced, "max", "paced", _num("max", "{:,.0f}")),
        Column(f"{plan.realistic_rate:g}/s", "CPU %", "realistic", _num("cpu_pct", "{:.2f}")),
        Column(soak, "RSS MB", "soak", _span("rss_start_mb", "rss_end_mb", "{:.0f}")),
        Column(soak, "growth", "soak", _num("rss_growth_pct", "{:+.0f}%")),
        Column(soak, "threads", "soak", _span("threads_start", "threads_end", "{:.0f}")),
        *_throughput(plan, "pumpportal"),
        *_throughput(plan, "solana"),
        Column(hop, "p50", "fanout", _num("p50", "{:,.0f}")),
        Column(hop, "p99", "fanout", _num("p99", "{:,.0f}")),
        Column(hop, "into", "fanout", _num("in_events_per_s", "{:,.0f}")),
        Column(hop, "out", "fanout", _num("events_per_s", "{:,.0f}")),
    ]
    return [c for c in every if c.workload in plan.workloads]


def table(plan: Plan, summary: Summary) -> str:
    cols = columns(plan)
    keys = [k for k in plan.clients if k != NULL]
    if any(NULL in summary.get(w, {}) for w in FIREHOSE):
        keys.append(NULL)
    names = [CLIENTS[key].label + (" *" if key == PRODUCT else "") for key in keys]
    cells = [[c.render(summary.get(c.workload, {}).get(key, {})) for c in cols] for key in keys]
    widths = [max(len(c.header), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    # widen the last column of each group so that the group's title fits over it
    groups: list[tuple[str, list[int]]] = []
    for i, c in enumerate(cols):
        if groups and groups[-1][0] == c.group:
            groups[-1][1].append(i)
        else:
            groups.append((c.group, [i]))
    for title, members in groups:
        span = sum(widths[i] for i in members) + 2 * (len(members) - 1)
        widths[members[-1]] += max(0, len(title) - span)
    first = max(len("client"), *(len(n) for n in names))
    top = " " * first
    for title, members in groups:
        span = sum(widths[i] for i in members) + 2 * (len(members) - 1)
        top += "  " + title.center(span, "-") if len(members) > 1 else "  " + title.rjust(span)
    lines = [top, "client".ljust(first) + "".join("  " + c.header.rjust(w) for c, w in zip(cols, widths, strict=True))]
    for name, row in zip(names, cells, strict=True):
        lines.append(name.ljust(first) + "".join("  " + cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


# ---------------------------------------------------------------- ratios and targets


def _get(summary: Summary, workload: str, client: str, name: str) -> float | None:
    return summary.get(workload, {}).get(client, {}).get(name)


def _ratio(summary: Summary, workload: str, name: str, baseline: str, client: str = PRODUCT) -> float | None:
    mine, theirs = _get(summary, workload, client, name), _get(summary, workload, baseline, name)
    return mine / theirs if mine is not None and theirs else None


RATIOS = (("bulk events/s", "bulk", "events_per_s"), ("bulk CPU/event", "bulk", "cpu_us_per_event"),
          ("paced p99", "paced", "p99"), ("300/s CPU", "realistic", "cpu_pct"),
          ("PP events/s", "pumpportal", "events_per_s"), ("PP CPU/event", "pumpportal", "cpu_us_per_event"),
          ("Sol events/s", "solana", "events_per_s"), ("Sol CPU/event", "solana", "cpu_us_per_event"))  # fmt: skip


def ratios(plan: Plan, summary: Summary) -> dict[str, dict[str, float | None]]:
    """The product's figures over each baseline's, for the workloads the capacity run vouches for."""
    summary = judged(summary)
    return {
        baseline: {label: _ratio(summary, workload, name, baseline) for label, workload, name in RATIOS}
        for baseline in plan.clients
        if baseline not in (PRODUCT, NULL, MARKET)  # the market client is pumpsync plus work: no baseline
    }


def ratio_lines(plan: Plan, summary: Summary) -> list[str]:
    by_baseline = ratios(plan, summary)
    if not by_baseline or PRODUCT not in plan.clients:
        return []
    first = max(len(CLIENTS[b].label) for b in by_baseline) + 3
    shown = [label for label, workload, _ in RATIOS if workload in plan.workloads]
    if not shown:
        return []
    lines = [
        f"{CLIENTS[PRODUCT].label} (*) / baseline, same run (events/s: higher is better; CPU, latency: lower):",
        " " * first + "".join(f"  {label:>14}" for label in shown),
    ]
    for baseline, values in by_baseline.items():
        cells = "".join(f"  {_x(values[label]):>14}" for label in shown)
        lines.append(f"vs {CLIENTS[baseline].label}".ljust(first) + cells)
    return lines


def _consumer_load(plan: Plan, row: dict[str, float]) -> list[str]:
    """What the consumers alone ask of the machine (the latency is queueing once that nears its CPUs)."""
    cpu = row.get("consumer_cpu_us_per_event")
    if cpu is None:
        return []
    load = plan.fanout_consumers * plan.paced_rate * cpu / 1e6
    return [f"  each consumer used {cpu:.0f} us CPU per event: {load:.2f} CPUs for the {plan.fanout_consumers} "
            f"(of {os.cpu_count()} here, shared with the daemon, Redis and the simulator)"]  # fmt: skip


def fanout_lines(plan: Plan, summary: Summary) -> list[str]:
    """The hop against a direct connection measured in the same repetitions."""
    row = summary.get("fanout", {}).get(PRODUCT, {})
    if "p50" not in row:
        return []
    p50, p99, d50, d99 = row["p50"], row["p99"], row["direct_p50"], row["direct_p99"]
    into = row.get("in_events_per_s")
    return [
        f"Fan-out through Redis: OpenPump -> pumpsync daemon (redis sink) -> redis-server -> "
        f"{plan.fanout_consumers} consumers (Client('redis') + get), each reading every event:",
        f"  latency at {plan.paced_rate:g}/s, send -> consumer: p50 {p50:,.0f} us, p99 {p99:,.0f} us "
        f"(all consumers pooled); direct connection in the same run: p50 {d50:,.0f} us, p99 {d99:,.0f} us",
        f"  the hop adds p50 {p50 - d50:+,.0f} us, p99 {p99 - d99:+,.0f} us: {_x(p50 / d50 if d50 else None)} and "
        f"{_x(p99 / d99 if d99 else None)} the direct connection's",
        *_consumer_load(plan, row),
        f"  throughput ({plan.fanout_events:,} events): into Redis "
        f"{'-' if into is None else f'{into:,.0f}'}/s; out of Redis {row['events_per_s']:,.0f}/s in all "
        f"({row['per_consumer_per_s']:,.0f}/s per consumer)",
    ]


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


@dataclass(frozen=True)
class Target:
    text: str
    value: str
    met: bool | None  # None: not measured in this run


# #27 item 5: what the market view may cost per event at the bulk rate, in CPU: the market client's
# figure minus the iterator's in the same run (the stream's own cost cancels out).
MARKET_US_PER_EVENT = 5.0


def market_cost(summary: Summary) -> float | None:
    """The market view's CPU per event in bulk: ``pumpsync-market`` minus ``pumpsync-iter``, same run."""
    summary = judged(summary)
    with_market = _get(summary, "bulk", MARKET, "cpu_us_per_event")
    alone = _get(summary, "bulk", ITERATOR, "cpu_us_per_event")
    return None if with_market is None or alone is None else with_market - alone


# #26's targets for the product and for the iterator: (text, workload, figure, baseline or None
# for the client's own figure, the test, the format).
CLIENT_TARGETS: tuple[tuple[str, str, str, str | None, Callable[[float], bool], str], ...] = (
    ("bulk {} >= 1.3x websockets asyncio", "bulk", "events_per_s", "websockets", lambda v: v >= 1.3, "{:.2f}x"),
    ("bulk {} >= 0.8x picows + json.loads (stretch 1.0x)", "bulk", "events_per_s", "picows", lambda v: v >= 0.8,
     "{:.2f}x"),
    ("bulk {}: CPU <= 4 us per event", "bulk", "cpu_us_per_event", None, lambda v: v <= 4.0, "{:.2f} us"),
    ("solana {} >= 1.0x websockets + json.loads + base64", "solana", "events_per_s", "websockets",
     lambda v: v >= 1.0, "{:.2f}x"),
    ("solana {}: CPU <= 15 us per event", "solana", "cpu_us_per_event", None, lambda v: v <= 15.0, "{:.2f} us"),
)  # fmt: skip


def targets(summary: Summary) -> list[Target]:
    """The issue's targets (#26) for the product and the iterator, on this run's medians; a firehose
    workload the capacity run cannot vouch for is not judged (n/a)."""
    summary = judged(summary)

    def check(text: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> Target:
        return Target(text, "-" if value is None else fmt.format(value), None if value is None else ok(value))

    def get(workload: str, name: str, client: str = PRODUCT) -> float | None:
        return _get(summary, workload, client, name)

    growth, steady = get("soak", "rss_growth_pct"), get("soak", "rss_steady_growth_pct")
    t0, t1 = get("soak", "threads_start"), get("soak", "threads_end")
    soak_rss = check("soak: RSS growth < 10 %", growth, lambda v: v < 10.0, "{:+.1f} %")
    if steady is not None:
        soak_rss = Target(soak_rss.text, f"{soak_rss.value} ({steady:+.1f} % after the first quarter)", soak_rss.met)
    out: list[Target] = []
    for client, who in ((PRODUCT, "Client+get"), (ITERATOR, "iterator")):
        for text, workload, name, baseline, ok, fmt in CLIENT_TARGETS:
            value = _ratio(summary, workload, name, baseline, client) if baseline else get(workload, name, client)
            out.append(check(text.format(who), value, ok, fmt))
    out.append(
        check(
            f"bulk: the market view <= {MARKET_US_PER_EVENT:g} us per event (#27; over the iterator)",
            market_cost(summary),
            lambda v: v <= MARKET_US_PER_EVENT,
            "{:.2f} us",
        )
    )
    bare_max = get("paced", "max", "ws-recv")
    out += [
        check(
            "paced: p99 <= 1.2x websocket-client recv()",
            _ratio(summary, "paced", "p99", "ws-recv"),
            lambda v: v <= 1.2,
            "{:.2f}x",
        ),
        check(
            "paced: max <= 2 ms (where recv()'s max is)",
            get("paced", "max"),
            lambda v: v <= max(2000.0, bare_max or 0.0),
            "{:,.0f} us",
        ),
        check(
            "300/s: CPU <= websockets asyncio's, metrics on",
            _ratio(summary, "realistic", "cpu_pct", "websockets"),
            lambda v: v <= 1.0,
            "{:.2f}x",
        ),
        soak_rss,
        Target(
            "soak: thread count constant",
            "-" if t0 is None else f"{t0:.0f} -> {t1:.0f}",
            None if t0 is None else t0 == t1,
        ),
    ]
    return out  # fmt: skip


def target_lines(summary: Summary) -> list[str]:
    marks = {True: "met    ", False: "NOT MET", None: "n/a    "}
    items = targets(summary)
    width = max(len(t.text) for t in items)
    return ["Targets (product *):"] + [f"  [{marks[t.met]}] {t.text.ljust(width)}  {t.value}" for t in items]
