"""Benchmark firehose: many trade frames, as fast as possible or paced.

Frames are pre-serialized per connection from a small pool of realistic trades; per frame
only the signature's last 8 characters (so every event is distinct, the same across
connections) and the optional ``simSentNs`` stamp change. Frames go straight into the
websockets protocol object in batches, with write-buffer flow control between batches.
Blast frames are not recorded in any history.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from websockets.protocol import State

from pumpsync.simulator._ids import CounterSuffix
from pumpsync.simulator.connection import Conn
from pumpsync.simulator.market import Market, Trade
from pumpsync.simulator.server import ProviderServer

POOL_SIZE = 64
BATCH = 256
_suffix = CounterSuffix()


def trade_pool(seed: int) -> list[Trade]:
    """Realistic trades from a market of their own, so the main market is not disturbed."""
    market = Market(seed)
    pool: list[Trade] = []
    while len(pool) < POOL_SIZE:
        pool.extend(e for e in market.step("trade") if isinstance(e, Trade))
    return pool[:POOL_SIZE]


@dataclass(frozen=True)
class _Template:
    head: bytes  # up to the signature's last 8 characters
    tail: bytes  # after them, without the closing brace


def _templates(server: ProviderServer, conn: Conn, pool: list[Trade]) -> list[list[_Template]]:
    out: list[list[_Template]] = []
    for trade in pool:
        frames = []
        for text in server.blast_texts(conn, trade):
            cut = text.index(trade.signature) + len(trade.signature) - 8
            frames.append(_Template(text[:cut].encode(), text[cut + 8 : -1].encode()))
        out.append(frames)
    return out


class Blaster:
    def __init__(self, seed: int) -> None:
        self._pool = trade_pool(seed)
        self._counter = 0

    async def blast(self, servers: list[ProviderServer], count: int, rate: float | None, stamp: bool) -> int:
        """Send ``count`` trade events to every subscribed connection; frames sent."""
        first, self._counter = self._counter, self._counter + count
        jobs = []
        for server in servers:
            for conn in list(server.conns.values()):
                templates = _templates(server, conn, self._pool)
                if any(templates):
                    jobs.append(_send(conn, templates, first, count, rate, stamp))
        return sum(await asyncio.gather(*jobs))


def _frame(tpl: _Template, serial: bytes, stamp: bool) -> bytes:
    if stamp:
        return b'%b%b%b,"simSentNs":%d}' % (tpl.head, serial, tpl.tail, time.time_ns())
    return b"%b%b%b}" % (tpl.head, serial, tpl.tail)


async def _send(
    conn: Conn, templates: list[list[_Template]], first: int, count: int, rate: float | None, stamp: bool
) -> int:
    ws = conn.ws
    protocol = ws.protocol
    loop = asyncio.get_running_loop()
    started = loop.time()
    pool = len(templates)
    sent = frames = 0
    while sent < count:
        if protocol.state is not State.OPEN:
            break
        end = min(count, sent + BATCH)
        if rate is not None:
            elapsed = loop.time() - started
            end = min(end, int(elapsed * rate) + 1)
            if end <= sent:  # ahead of the pace: sleep until the next frame is due
                await asyncio.sleep(max(0.0, min(0.01, sent / rate - elapsed)))
                continue
        if not conn.stalled:
            for n in range(sent, end):
                serial = _suffix.render(first + n).encode()
                for tpl in templates[n % pool]:
                    protocol.send_text(_frame(tpl, serial, stamp))
                    frames += 1
            ws.send_data()
        sent = end
        await ws.drain()  # waits only while the transport's write buffer is over its limit
    return frames
