"""A measured client's process: ``python -m pumpsync_bench.worker SPEC``.

``SPEC`` is a JSON object: ``client`` (a key of ``CLIENTS``), ``feed`` (a :class:`Feed`'s fields:
``provider``, ``url``, ``keys``), ``count`` (events to
wait for), ``latency`` (keep per-event latencies), ``warm_at`` (mark memory there),
``first_timeout`` and ``idle_timeout`` (seconds), ``metrics_addr`` (where the product serves
its metrics), ``keep_samples`` (report every latency sample). The result is one JSON object on stdout;
anything else the process says goes to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from typing import Any

from pumpsync_bench.clients import CLIENTS, Feed
from pumpsync_bench.probe import Recorder, Watchdog


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    client = CLIENTS[spec["client"]](spec.get("metrics_addr"))
    recorder = Recorder(int(spec["count"]), latency=bool(spec.get("latency")), warm_at=spec.get("warm_at"))
    watchdog = Watchdog(
        recorder, client.abort, float(spec.get("first_timeout", 30.0)), float(spec.get("idle_timeout", 10.0))
    ).start()
    try:
        feed = spec["feed"]
        extra = client.run(Feed(**{**feed, "keys": tuple(feed.get("keys", ()))}), recorder)
    finally:
        watchdog.stop()
    result = recorder.result()
    result.update(extra)
    if spec.get("keep_samples") and recorder.samples is not None:  # the fan-out pools its consumers' samples
        result["samples_ns"] = recorder.samples.tolist()
    if watchdog.fired:
        result["error"] = f"stalled after {recorder.received} of {recorder.count} events"
    elif recorder.received < recorder.count:
        result["error"] = f"the stream ended after {recorder.received} of {recorder.count} events"
    return result


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        result = measure(json.loads(argv[0]))
    except Exception as exc:  # report, never hang the orchestrator
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
