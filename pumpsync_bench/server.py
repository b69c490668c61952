"""The simulator in a process of its own: ``python -m pumpsync_bench.server SEED``.

It serves every provider a workload reads (OpenPump, PumpPortal, and Solana where the simulator
has it), prints ``{"urls": {provider: url}, "mints": [...]}`` (the mints of the blast's trades,
for PumpPortal's trade subscription), then answers one JSON line per JSON line of commands on
stdin: ``idle`` (wait until no client is connected), ``ready`` (wait for ``n`` streaming clients
of ``provider``), ``blast`` (send ``count`` stamped trades to ``provider``'s clients at
``rate``/s, or as fast as possible), ``stop``. End of stdin (the orchestrator went away) stops it too.

The same process runs the firehose (:mod:`pumpsync_bench.firehose`, its ``urls`` under ``firehose``):
``fh_prepare`` (build a ``count`` blast of ``provider``'s frames, before any clock starts), ``fh_ready``
(wait for ``n`` streaming clients), ``fh_blast`` (send it; frames, bytes, wall and CPU seconds, send rate).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

from pumpsync_bench.clients import Feed
from pumpsync_bench.firehose import Firehose, capture
from pumpsync_bench.probe import cpu_seconds

PROVIDER = "openpump"  # the default workloads' provider
PROVIDERS = ("openpump", "pumpportal", "solana")  # those the simulator has are served


class BenchError(Exception):
    """A run could not be measured (a process failed, hung or answered nonsense)."""


# ---------------------------------------------------------------- the child


def _handle(sim: Any, hose: Firehose, cmd: dict[str, Any]) -> dict[str, Any]:
    op, timeout = cmd["op"], float(cmd.get("timeout", 10.0))
    provider = cmd.get("provider", PROVIDER)
    if op == "idle":
        sim.wait_for(lambda: not any(sim.connections(p) for p in sim.providers), timeout)
        hose.wait_idle(timeout)
        return {}
    if op == "fh_prepare":
        blast = hose.prepare(provider, int(cmd["count"]))
        dialect = hose.dialects[provider]
        return {"frames": blast.frames, "bytes": blast.bytes, "preamble": len(dialect.preamble),
                "answers": len(dialect.answers)}  # fmt: skip
    if op == "fh_ready":
        hose.wait_streaming(provider, int(cmd["n"]), timeout)
        return {}
    if op == "fh_blast":
        return hose.blast(provider, int(cmd["count"]), timeout)
    if op == "ready":
        sim.wait_for_connections(provider, int(cmd["n"]), subscribed=True, timeout=timeout)
        return {}
    if op == "blast":
        wall, cpu = time.perf_counter(), cpu_seconds()
        frames = sim.blast(int(cmd["count"]), provider, rate=cmd.get("rate"), stamp=True, timeout=timeout)
        return {"frames": frames, "wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}
    if op == "stop":
        return {}
    raise ValueError(f"unknown op {op!r}")


def main(argv: list[str]) -> int:
    from pumpsync.simulator import Simulator
    from pumpsync.simulator.blast import trade_pool
    from pumpsync.simulator.simulator import SERVERS

    seed = int(argv[0]) if argv else 1
    providers = tuple(p for p in PROVIDERS if p in SERVERS)
    # No PumpPortal ban: one connection at a time anyway, and a ban would stall every later run for an hour.
    with Simulator(providers=providers, port=0, rate=0, seed=seed, pumpportal_ban_seconds=0.0) as sim:
        # The blast's trade pool (the Simulator seeds it so); the PumpPortal server streams blast trades
        # to any funded key subscription, these are the mints a real subscriber would name.
        pool = trade_pool(seed + 1_000_003)
        mints = sorted({trade.mint for trade in pool})
        dialects = {}
        for p in providers:
            feed = Feed(p, sim.url(p), tuple(mints) if p == "pumpportal" else ())
            dialects[p] = capture(sim, feed, pool, hello_expected=bool(feed.hello()), pings=_pings(p))
        hose = Firehose(dialects)
        try:
            _reply({"urls": {p: sim.url(p) for p in providers}, "mints": mints,
                    "firehose": {p: hose.url(p) for p in providers}})  # fmt: skip
            for line in sys.stdin:
                cmd = json.loads(line)
                try:
                    _reply({"ok": True, **_handle(sim, hose, cmd)})
                except Exception as exc:  # answer, so that the orchestrator can go on or give up
                    _reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                if cmd["op"] == "stop":
                    break
        finally:
            hose.close()
    return 0


def _pings(provider: str) -> tuple[str, ...]:
    """The application-level ping pumpsync's dialect sends (the firehose answers it as the simulator does)."""
    from pumpsync.providers import dialect_class

    ping = dialect_class(provider)(0, []).ping()
    return (ping,) if isinstance(ping, str) and ping else ()  # a text ping (every JSON dialect's)


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- the parent's handle


class SimulatorProcess:
    """Starts the child and talks to it; every answer is awaited with a deadline."""

    def __init__(self, seed: int = 1, start_timeout: float = 30.0) -> None:
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "pumpsync_bench.server", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._buf = b""
        try:
            hello = self._read(start_timeout)
        except BaseException:
            self.close()
            raise
        self.urls: dict[str, str] = hello["urls"]
        self.mints: list[str] = hello["mints"]
        self.firehose: dict[str, str] = hello["firehose"]

    @property
    def url(self) -> str:
        return self.urls[PROVIDER]

    def call(self, op: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        """Run ``op`` in the child; raises BenchError if it fails or does not answer in time."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps({"op": op, "timeout": timeout, **args}) + "\n").encode())
            stdin.flush()
        except OSError as exc:
            raise BenchError(f"simulator process gone: {exc}{self._tail()}") from None
        answer = self._read(timeout + 10.0)
        if not answer.get("ok"):
            raise BenchError(f"simulator {op}: {answer.get('error')}")
        return answer

    def _read(self, timeout: float) -> dict[str, Any]:
        stdout = self._proc.stdout
        assert stdout is not None
        fd = stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"simulator did not answer within {timeout:.0f} s")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BenchError(f"simulator process exited{self._tail()}")
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _tail(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return f": {text[-800:]}" if text else ""

    def close(self) -> None:
        """Stop politely, then for sure."""
        proc = self._proc
        if proc.poll() is None:
            try:
                self.call("stop", timeout=5.0)
            except BenchError:
                pass
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._log.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
