"""The fan-out workload: provider -> ``pumpsync daemon`` (redis sink) -> Redis -> ten consumers.

Each repetition measures, against the same simulator:

1. a direct connection: the product (``Client`` + ``get``) reading the OpenPump stream at the paced
   rate, the reference for the hop;
2. the hop's latency: the daemon publishes the same paced stream into a Redis Stream that
   ``fanout_consumers`` processes read (``Client("redis")`` + ``get``); the send stamp survives the
   hop inside ``raw``, so each consumer's latency is provider send -> consumer, pooled over all
   consumers for p50/p99;
3. throughput: ``fanout_events`` sent as fast as possible; *into* Redis from the entries' IDs
   (Redis's own clock at each ``XADD``), *out of* Redis as the sum of the consumers' rates.

``redis-server`` runs from a temporary directory on a free port, memory only (no RDB, no AOF: the
figures are the hop's, not the disk's), started here and stopped here. Without ``redis-server`` or
the ``redis`` package the workload is skipped with the reason printed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import replace
from statistics import median
from types import TracebackType
from typing import IO, Any

from pumpsync_bench.clients import API_KEY, PRODUCT, Feed
from pumpsync_bench.probe import percentiles
from pumpsync_bench.runner import (
    SETTLE,
    STARTUP,
    Plan,
    Progress,
    Workload,
    await_connection,
    parse_result,
    run_one,
    worker_command,
    worker_spec,
)
from pumpsync_bench.scrape import free_addr
from pumpsync_bench.server import BenchError, SimulatorProcess

MAXLEN = 2_000_000  # the stream's retention: above one repetition's entries, so that none is trimmed mid-read


def unavailable() -> str | None:
    """Why the workload cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian: apt-get install redis-server)"
    if importlib.util.find_spec("redis") is None:
        return "the redis package is not installed: pip install 'pumpsync[redis]'"
    return None


class RedisProcess:
    """A throw-away ``redis-server``: a free port on 127.0.0.1, a temporary directory, memory only."""

    def __init__(self, timeout: float = 10.0) -> None:
        import redis

        self._dir = tempfile.TemporaryDirectory(prefix="pumpsync-bench-redis-")
        self.port = int(free_addr().rpartition(":")[2])
        log = open(os.path.join(self._dir.name, "redis.log"), "wb")  # noqa: SIM115 - the process keeps it
        self._proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", self._dir.name, "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--maxmemory-policy", "noeviction"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        self.client: Any = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.ping()
                return
            except redis.RedisError as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise BenchError(f"redis-server did not start: {exc}") from None
                time.sleep(0.05)

    def url(self, stream: str) -> str:
        return f"redis://127.0.0.1:{self.port}/0?stream={stream}"

    def blocked_clients(self) -> int:
        return int(self.client.info("clients")["blocked_clients"])

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10.0)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._dir.cleanup()


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


class Fanout:
    """Runs the fan-out workload's repetitions; starts Redis only if the plan has the workload."""

    def __init__(self, plan: Plan, sim: SimulatorProcess, progress: Progress) -> None:
        self.plan = plan
        self.sim = sim
        self.say = progress
        self.unavailable = unavailable()
        self.redis: RedisProcess | None = None
        self._runs = 0

    def __enter__(self) -> Fanout:
        wanted = "fanout" in self.plan.workloads and PRODUCT in self.plan.clients
        if wanted and self.unavailable is None:
            try:
                self.redis = RedisProcess()
            except BenchError as exc:
                self.unavailable = str(exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.redis is not None:
            self.redis.close()

    def run(self, workload: Workload) -> dict[str, Any]:
        """One repetition; never raises, an ``error`` key says what failed."""
        redis = self.redis
        if redis is None:
            return {"error": self.unavailable or "redis-server is not running"}
        self._runs += 1
        stream = f"bench:fanout:{os.getpid()}:{self._runs}"
        direct = run_one(self.sim, PRODUCT, replace(workload, key="fanout-direct"))
        out: dict[str, Any] = {"consumers": self.plan.fanout_consumers, "stream": stream, "direct": direct}
        if "error" in direct:
            out["error"] = f"direct connection: {direct['error']}"
            return out
        try:
            with _Daemon(self.sim, redis.url(stream)):
                out.update(self._latency(redis, stream, workload))
                out.update(self._throughput(redis, stream))
        except BenchError as exc:
            out["error"] = str(exc)
        return out

    def _latency(self, redis: RedisProcess, stream: str, workload: Workload) -> dict[str, Any]:
        results = self._consumers(redis, stream, "0", workload, workload.count, keep_samples=True)
        pooled: array[int] = array("q")
        for result in results:
            pooled.extend(result.pop("samples_ns", ()))
        return {"latency_runs": results, "latency_us": percentiles(pooled), "received": len(pooled),
                "expected": workload.count * len(results)}  # fmt: skip

    def _throughput(self, redis: RedisProcess, stream: str) -> dict[str, Any]:
        since = str(redis.client.xinfo_stream(stream)["last-generated-id"])
        count = self.plan.fanout_events
        bulk = Workload("fanout", count, None)
        results = self._consumers(redis, stream, since, bulk, count)
        # Into Redis: the span of the XADDs on Redis's clock (entry IDs are its milliseconds).
        added = redis.client.xrange(stream, min=f"({since}", max="+", count=1)
        last = redis.client.xrevrange(stream, max="+", min="-", count=1)
        span_ms = _ms(last[0][0]) - _ms(added[0][0]) if added and last else 0
        rates = [r["events_per_s"] for r in results if r.get("events_per_s")]
        return {
            "throughput_runs": results,
            "in_events_per_s": (count - 1) / (span_ms / 1000) if span_ms > 0 else None,
            "events_per_s": sum(rates) if len(rates) == len(results) else None,  # out of Redis, every consumer
            "events_per_s_per_consumer": median(rates) if rates else None,
        }

    def _consumers(
        self, redis: RedisProcess, stream: str, since: str, workload: Workload, count: int, keep_samples: bool = False
    ) -> list[dict[str, Any]]:
        """Start the consumers, wait until each is blocked reading, blast, and collect their results."""
        feed = Feed("redis", f"{redis.url(stream)}&since={since}")
        spec = worker_spec(PRODUCT, feed, workload, count)
        spec["keep_samples"] = keep_samples
        logs: list[IO[bytes]] = []
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(self.plan.fanout_consumers):
                logs.append(tempfile.TemporaryFile())  # noqa: SIM115 - closed below
                procs.append(subprocess.Popen(worker_command(spec), stdout=subprocess.PIPE, stderr=logs[-1]))
            self._await_readers(redis, procs, logs)
            time.sleep(SETTLE)
            self.sim.call("blast", timeout=workload.blast_timeout(), count=count, rate=workload.rate)
            results = []
            for proc, log in zip(procs, logs, strict=True):
                out, _ = proc.communicate(timeout=60.0 + count / 2_000)
                results.append(parse_result(out, log))
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"a consumer did not finish: {exc}") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
            for log in logs:
                log.close()
        failed = [r["error"] for r in results if "error" in r]
        if failed:
            raise BenchError(f"{len(failed)} of {len(results)} consumers failed: {failed[0]}")
        return results

    def _await_readers(self, redis: RedisProcess, procs: list[subprocess.Popen[bytes]], logs: list[IO[bytes]]) -> None:
        """Every consumer is blocked in ``XREAD`` (so none misses the start of the blast's clock)."""
        deadline = time.monotonic() + STARTUP
        while redis.blocked_clients() < len(procs):
            for proc, log in zip(procs, logs, strict=True):
                if proc.poll() is not None:
                    out, _ = proc.communicate()
                    raise BenchError(f"a consumer exited before reading: {parse_result(out, log).get('error')}")
            if time.monotonic() > deadline:
                raise BenchError(f"{len(procs)} consumers did not all start reading within {STARTUP:.0f} s")
            time.sleep(0.02)


SINK_BUFFER = 1_000_000  # events the daemon's redis sink may hold while Redis catches up


class _Daemon:
    """``pumpsync daemon --sink redis://...`` on the simulator's OpenPump stream, stopped with SIGTERM."""

    def __init__(self, sim: SimulatorProcess, sink: str) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        # A config file, for the sink's buffer: the throughput phase blasts faster than one daemon
        # writes, and the default buffer (10,000) would drop the rest (counted, but not measured).
        self._config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)  # noqa: SIM115
        with self._config as config:
            config.write(f'[[sinks]]\ntype = "redis"\nurl = "{sink}&maxlen={MAXLEN}"\nbuffer = {SINK_BUFFER}\n')
        command = [sys.executable, "-m", "pumpsync", "daemon", "--config", self._config.name, "--provider", "openpump",
                   "--url", sim.url, "--metrics-addr", "off"]  # fmt: skip
        env = {**os.environ, "PUMPSYNC_API_KEY": API_KEY}
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env)
        try:
            await_connection(sim, self._proc, self._log)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __enter__(self) -> _Daemon:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        proc = self._proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()
        os.unlink(self._config.name)


__all__ = ["Fanout", "RedisProcess", "unavailable"]
