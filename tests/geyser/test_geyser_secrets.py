"""The x-token never shows: not in logs at any level (grpcio's C-core tracers and Python loggers
included), not in exceptions, reprs or stats, even where the server echoes it in its error text."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("grpc")

SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    from pumpsync import Client
    from pumpsync.errors import PumpsyncError
    from pumpsync.simulator.simulator import Simulator
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    with Simulator(["geyser"], rate=20, geyser_ping_interval=0.3) as sim:
        with Client("geyser", url=sim.url("geyser"), api_key="sim-pro-TOKEN-4242", backoff_initial=0.05) as good:
            for n, event in enumerate(good):
                if n >= 5:
                    break
            print(repr(good), good.stats(), repr(good.config))
        refused = Client("geyser", url=sim.url("geyser"), api_key="sim-invalid", backoff_initial=0.05)
        refused.start()
        deadline = time.monotonic() + 20
        while refused.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        print("ERROR", type(refused.error).__name__, str(refused.error), repr(refused.error))
        refused.close()
    """
)


def test_the_token_never_shows_even_with_grpc_tracing_on() -> None:
    env = {**os.environ, "GRPC_VERBOSITY": "debug", "GRPC_TRACE": "all"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "ERROR AuthenticationError" in done.stdout
    assert "sim-pro-TOKEN-4242" not in output
    assert "sim-invalid" not in output
    assert "GRPC_TRACE ignored" in done.stderr
