"""What one event costs on the reader's path, stage by stage: ``python -m pumpsync_bench.stages [PROVIDER] [EVENTS]``.

The frames are the firehose's (the simulator's own output for the provider, captured over a real
connection, a fresh signature per frame), cut into the reader's 64 KiB reads. Each read goes through
the stages the reader and the consumer run — WebSocket framing, the dialect's ``receive`` (JSON and
the event), the delivery (de-duplication, counters, the queue), the consumer's ``get`` — on one
thread, each stage timed by ``time.process_time`` per read; the median of ``rounds`` rounds. What a
whole client uses beyond their sum (the session loop, the hand-off between threads, system calls) is
the bench's CPU per event minus it.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from typing import Any

from pumpsync._delivery import Delivery
from pumpsync._framing import FrameDecoder
from pumpsync._stats import ClientStats, ConnectionStats
from pumpsync.events import Event
from pumpsync.providers import dialect_class
from pumpsync.providers.base import Reply, Subscription
from pumpsync_bench.clients import Feed
from pumpsync_bench.firehose import build, capture

READ = 64 * 1024  # the transport's read size
STAGES = ("framing", "receive", "delivery", "get")


def frames(provider: str, count: int, seed: int = 1) -> tuple[bytes, tuple[str, ...]]:
    """``count`` blast frames of ``provider`` as the firehose sends them, and the mints subscribed to."""
    from pumpsync.simulator import Simulator
    from pumpsync.simulator.blast import trade_pool

    options: dict[str, Any] = {"pumpportal_ban_seconds": 0.0} if provider == "pumpportal" else {}
    with Simulator(providers=(provider,), port=0, rate=0, seed=seed, **options) as sim:
        pool = trade_pool(seed + 1_000_003)
        mints = tuple(sorted({trade.mint for trade in pool}))
        feed = Feed(provider, sim.url(provider), mints if provider == "pumpportal" else ())
        dialect = capture(sim, feed, pool, hello_expected=bool(feed.hello()))
    return b"".join(build(dialect, count).chunks), mints


def measure(provider: str, data: bytes, mints: tuple[str, ...] = (), rounds: int = 3) -> dict[str, Any]:
    """Microseconds of CPU per event for each stage (medians of ``rounds``), and the events made."""
    reads = [data[i : i + READ] for i in range(0, len(data), READ)]
    subs = [Subscription("token_trades", {"keys": list(mints)})] if provider == "pumpportal" else []
    if provider == "solana":
        subs = [Subscription(channel) for channel in ("creations", "trades", "graduations")]
    clock = time.process_time
    spent: dict[str, list[float]] = {stage: [] for stage in STAGES}
    events = 0
    for _ in range(rounds):
        gc.collect()
        decoder = FrameDecoder(1 << 24)
        dialect = dialect_class(provider)(0, subs)
        if provider == "solana":
            _subscribe(dialect, data)
        receive = dialect.receive
        delivery = Delivery(ClientStats(provider, 1 << 30, [ConnectionStats(0)]), 1 << 30, 400_000)
        get = delivery.queue.get
        received_at = int(time.time() * 1000)
        totals = [0.0] * len(STAGES)
        events = 0
        for chunk in reads:
            t0 = clock()
            payloads = [payload for _, payload in decoder.feed(chunk)]
            t1 = clock()
            batch = [out for payload in payloads for out in receive(payload, received_at) if type(out) is Event]
            t2 = clock()
            delivery.deliver_all(batch)
            t3 = clock()
            for _ in batch:
                get()
            t4 = clock()
            for i, (a, b) in enumerate(((t0, t1), (t1, t2), (t2, t3), (t3, t4))):
                totals[i] += b - a
            events += len(batch)
        for stage, total in zip(STAGES, totals, strict=True):
            spent[stage].append(total)
    per_event = {stage: 1e6 * statistics.median(values) / max(1, events) for stage, values in spent.items()}
    return {"provider": provider, "events": events, "us_per_event": per_event, "total": sum(per_event.values())}


def _subscribe(dialect: Any, data: bytes) -> None:
    """A Solana dialect answered as a node would: its logsSubscribe (the id the frames carry) and
    PumpSwap's, so that the frames are its subscription's notifications, not an unknown one's."""
    first = next(iter(FrameDecoder(1 << 24).feed(data[: 1 << 20])))[1]
    sub_id = json.loads(first)["params"]["subscription"]
    requests = [json.loads(frame) for frame in dialect.on_open()]
    while requests:
        request = requests.pop(0)
        answer = sub_id if request["method"] == "logsSubscribe" and request["id"] == 1 else 1_000 + request["id"]
        reply = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": answer})
        requests += [json.loads(out.text) for out in dialect.receive(reply, 0) if isinstance(out, Reply)]


def line(result: dict[str, Any]) -> str:
    stages = ", ".join(f"{stage} {us:.2f}" for stage, us in result["us_per_event"].items())
    head = f"{result['provider']} ({result['events']:,} events)"
    return f"{head}, us of CPU per event: {stages}; sum {result['total']:.2f}"


def main(argv: list[str]) -> int:
    provider = argv[0] if argv else "openpump"
    count = int(argv[1]) if len(argv) > 1 else 200_000
    data, mints = frames(provider, count)
    print(line(measure(provider, data, mints)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
