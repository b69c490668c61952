"""Helpers for the daemon tests: the daemon as a real subprocess, free ports, waiting with deadlines."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DASHBOARD = REPO / "grafana" / "dashboards" / "pumpsync.json"
RULES = REPO / "contrib" / "prometheus" / "pumpsync-alerts.yml"
RULE_TESTS = REPO / "contrib" / "prometheus" / "pumpsync-alerts.test.yml"
UNIT = REPO / "contrib" / "systemd" / "pumpsync.service"
EXAMPLE_CONFIG = REPO / "contrib" / "systemd" / "pumpsync.toml"
ENTRY = "from pumpsync.cli import main; main()"

# Fast client timings for daemons under test.
FAST_FLAGS = ["--ping-interval", "1", "--pong-timeout", "0.8", "--stale-timeout", "3", "--backoff-initial", "0.05",
              "--backoff-max", "0.3"]  # fmt: skip


@contextlib.contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 with ``handler``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would steer the daemon, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUMPSYNC_", "NOTIFY_", "WATCHDOG_"))}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env.pop("JOURNAL_STREAM", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class DaemonProc:
    """``pumpsync daemon ARGS`` as a subprocess; output goes to files in ``workdir``."""

    def __init__(
        self,
        args: Sequence[str],
        workdir: Path,
        env: dict[str, str] | None = None,
        name: str = "daemon",
        preexec: Callable[[], None] | None = None,
        stdout_pipe: bool = False,
    ):
        self.args = list(args)
        self.metrics_port = free_port()
        if "--metrics-addr" not in self.args:
            self.args += ["--metrics-addr", f"127.0.0.1:{self.metrics_port}"]
        self.out_path = workdir / f"{name}.stdout"
        self.err_path = workdir / f"{name}.stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ENTRY, "daemon", *self.args],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if stdout_pipe else out, stderr=err,
                env=env if env is not None else clean_env(), cwd=workdir, start_new_session=True, preexec_fn=preexec,
            )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def _alive_or_fail(self) -> None:
        if not self.running():
            pytest.fail(f"the daemon exited with {self.proc.returncode}; stderr:\n{self.stderr[-4000:]}")

    def wait_ready(self, timeout: float = 20.0) -> None:
        def ready() -> bool:
            self._alive_or_fail()
            try:
                return http_get(self.url + "/readyz", timeout=2.0)[0] == 200
            except OSError:
                return False

        wait_until(ready, timeout, "the daemon's /readyz to answer 200")

    def wait_streaming(self, sim: Any, provider: str = "anaxer") -> DaemonProc:
        """Ready, and subscribed at the simulator: events emitted from now on reach it."""
        self.wait_ready()
        sim.wait_for_connections(provider, 1, subscribed=True)
        return self

    def metrics(self) -> str:
        status, body = http_get(self.url + "/metrics")
        assert status == 200
        return body

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of one sample of a scrape (labels must match those given), or None."""
        from prometheus_client.parser import text_string_to_metric_families

        for family in text_string_to_metric_families(self.metrics()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return None

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.running():
            self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the daemon did not stop within {timeout} s; stderr:\n{self.stderr[-4000:]}")

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def final_counts(self) -> dict[str, tuple[int, int]]:
        """From the last log line: per sink, (written, dropped); and "dispatched": (n, 0)."""
        line = [x for x in self.stderr.splitlines() if "stopped:" in x][-1]
        match = re.search(r"(\d+) events dispatched", line)
        assert match is not None, line
        counts = {"dispatched": (int(match.group(1)), 0)}
        for name, written, dropped in re.findall(r"([\w-]+) (\d+) written/(\d+) dropped", line):
            counts[name] = (int(written), int(dropped))
        return counts


def worktree_env(*paths: Path, **extra: str) -> dict[str, str]:
    """:func:`clean_env` whose PYTHONPATH is ``paths`` (user sink modules) and this checkout."""
    return clean_env(PYTHONPATH=os.pathsep.join([*map(str, paths), str(REPO)]), **extra)
