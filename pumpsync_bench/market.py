"""What the market view costs an event on one thread: ``python -m pumpsync_bench.market [EVENTS] [ROUNDS]``.

The events are the bulk workload's (the firehose's OpenPump frames, decoded by the dialect as the
client does), decoded once before the clock starts; each round replays them through a fresh
:class:`pumpsync.Market`'s ``update``, timed by ``time.process_time``; the median of the rounds. The
bench's ``pumpsync-market`` client measures the same work inside a whole client (issue #27, item 5).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

from pumpsync._framing import FrameDecoder
from pumpsync.events import Event
from pumpsync.market import Market
from pumpsync.providers import dialect_class
from pumpsync_bench.stages import READ, frames


def events(count: int) -> list[Event]:
    data, _ = frames("openpump", count)
    decoder, receive = FrameDecoder(1 << 24), dialect_class("openpump")(0, []).receive
    received_at = int(time.time() * 1000)
    out: list[Event] = []
    for i in range(0, len(data), READ):
        for _, payload in decoder.feed(data[i : i + READ]):
            out.extend(e for e in receive(payload, received_at) if type(e) is Event)
    return out


def measure(batch: list[Event], rounds: int = 5) -> list[float]:
    """Microseconds of CPU per event of each round."""
    out = []
    for _ in range(rounds):
        update = Market().update
        gc.collect()
        start = time.process_time()
        for event in batch:
            update(event)
        out.append((time.process_time() - start) * 1e6 / max(1, len(batch)))
    return out


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 200_000
    per_round = measure(events(count), int(argv[1]) if len(argv) > 1 else 5)
    rounds = " ".join(f"{us:.2f}" for us in per_round)
    median = statistics.median(per_round)
    print(f"Market.update over {count:,} bulk events: {median:.2f} us an event (rounds: {rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
