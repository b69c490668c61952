"""The geyser workload: decoded events/s and CPU per event through ``pumpsync`` (provider ``geyser``)
against a bare grpcio loop that only parses each ``SubscribeUpdate`` (the floor any Python client pays).

A server process of its own (``python -m pumpsync_bench.geyser serve PORTFILE COUNT``) streams
``COUNT`` real-shaped pump.fun transactions (rendered by the simulator, each with its own signature)
as fast as grpcio takes them; each client runs in this process and is timed from its first message
to its last, CPU by ``time.process_time`` (every thread of this process: grpcio's included).
Run: ``python -m pumpsync_bench.geyser run [COUNT]`` (prints one JSON object). Not part of the test
suite's timing: a test only checks that both clients receive everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_DISTINCT = 200  # transactions rendered; the rest are copies with other signatures


def _updates() -> list[tuple[bytes, bytes]]:
    """(update, its signature bytes) for ``_DISTINCT`` market transactions (launches and curve trades)."""
    from pumpsync.simulator._solana_calls import Recipe
    from pumpsync.simulator._solana_encode import b58decode
    from pumpsync.simulator._solana_tx import render
    from pumpsync.simulator.geyser_wire import transaction_update
    from pumpsync.simulator.market import Launch, Market, Trade

    market = Market(7)
    out: list[tuple[bytes, bytes]] = []
    while len(out) < _DISTINCT:
        for event in market.step(None):
            if isinstance(event, Launch):
                recipe = Recipe("launch", event.signature, event.slot, 0, launch=event)
            elif isinstance(event, Trade) and event.venue != "pumpswap":
                recipe = Recipe("trade", event.signature, event.slot, 0, trade=event, creator=event.trader)
            else:
                continue
            rendered = render(recipe)
            parts = (rendered.keys, rendered.instructions, rendered.inner, rendered.logs)
            update = transaction_update(recipe.signature, recipe.slot, *parts, False)
            out.append((update, b58decode(recipe.signature)))
    return out[:_DISTINCT]


def _stream(count: int) -> Iterator[bytes]:
    updates = _updates()
    for n in range(count):
        update, signature = updates[n % _DISTINCT]
        if n >= _DISTINCT:  # another signature of the same length: no client may take it for a duplicate
            fresh = n.to_bytes(8, "little") + signature[8:]
            update = update.replace(signature, fresh)
        yield update


def serve(port_file: str, count: int) -> None:
    """The server process: every Subscribe call gets ``count`` updates, then stays open."""
    import grpc

    prepared = list(_stream(count))

    def drain(requests: Iterator[bytes]) -> None:
        try:
            for _ in requests:
                pass
        except Exception:
            return

    def subscribe(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        threading.Thread(target=drain, args=(requests,), daemon=True).start()
        yield from prepared
        while context.is_active():
            time.sleep(0.1)

    from concurrent.futures import ThreadPoolExecutor

    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "geyser.Geyser", {"Subscribe": grpc.stream_stream_rpc_method_handler(subscribe)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    Path(port_file).write_text(str(port))
    server.wait_for_termination()


def bare(port: int, count: int) -> dict[str, float]:
    """grpcio's generic call and the protobuf parse, nothing else."""
    import grpc

    from pumpsync.providers.geyser._proto import decode_update, subscribe_request

    channel = grpc.insecure_channel(f"127.0.0.1:{port}", [("grpc.max_receive_message_length", 64 << 20)])
    call = channel.stream_stream("/geyser.Geyser/Subscribe")(iter([subscribe_request(("x",), "confirmed")]))
    got = 0
    start = cpu = 0.0
    for message in call:
        if got == 0:
            start, cpu = time.perf_counter(), time.process_time()
        decode_update(message)
        got += 1
        if got == count:
            break
    wall, used = time.perf_counter() - start, time.process_time() - cpu
    call.cancel()
    channel.close()
    return {"messages": got, "messages_per_s": got / wall, "cpu_us_per_message": used / got * 1e6}


def product(port: int, count: int) -> dict[str, float]:
    """pumpsync's geyser provider: decoded, normalized, de-duplicated events handed to the consumer;
    timed from the first event to the last (the stream is over when 2 s pass without one)."""
    import queue

    from pumpsync import Client

    got = 0
    start = cpu = last = last_cpu = 0.0
    with Client("geyser", url=f"http://127.0.0.1:{port}", queue_size=1_000_000) as client:
        while True:
            try:
                client.get(timeout=2.0)
            except queue.Empty:
                break
            last, last_cpu = time.perf_counter(), time.process_time()
            if got == 0:
                start, cpu = last, last_cpu
            got += 1
    wall, used = max(last - start, 1e-9), last_cpu - cpu
    return {"events": got, "messages": count, "events_per_s": got / wall, "cpu_us_per_event": used / max(got, 1) * 1e6}


def run(count: int = 20_000) -> dict[str, Any]:
    """Both clients against fresh server processes; one JSON-able result."""
    results: dict[str, Any] = {"messages": count}
    for name in ("bare", "pumpsync"):
        with tempfile.TemporaryDirectory() as tmp:
            port_file = Path(tmp) / "port"
            serve_args = ["-m", "pumpsync_bench.geyser", "serve", str(port_file), str(count)]
            proc = subprocess.Popen([sys.executable, *serve_args])
            try:
                deadline = time.monotonic() + 120
                while not port_file.exists() or not port_file.read_text():
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the geyser bench server did not start")
                    time.sleep(0.05)
                port = int(port_file.read_text())
                if name == "bare":
                    results[name] = bare(port, count)
                else:
                    results[name] = product(port, count)
            finally:
                proc.kill()
                proc.wait(10)
    return results


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]))
    else:
        print(json.dumps(run(int(argv[1]) if len(argv) > 1 else 20_000), indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])


__all__ = ["bare", "product", "run", "serve"]
