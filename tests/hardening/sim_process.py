"""The simulator in a process of its own, driven over stdin/stdout (one JSON object per line).

The long runs measure this process's memory: the simulator's history (every event it ever
published, kept for REST) must not be counted against the client. Run by
:class:`hardening_support.SimProcess`; not a test module.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

from pumpsync.simulator import Simulator

# Simulator methods the parent may call, as they are.
_PASSTHROUGH = {
    "drop",
    "close",
    "stall",
    "unstall",
    "send_malformed",
    "restart",
    "reject_next",
    "rest_fail_next",
    "pause",
    "resume",
    "ignore_pings",
    "blast",
}
_KIND_OF = {"created": "new_token", "swap": "trade"}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _call(sim: Simulator, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if method in _PASSTHROUGH:
        return _plain(getattr(sim, method)(*args, **kwargs))
    if method == "emit":
        return len(sim.emit(*args, **kwargs))
    if method == "connections":
        return _plain(sim.connections(*args, **kwargs))
    if method == "expected_events":  # (kind, signature) of creations and trades after a slot
        (after_slot,) = args
        return [
            [_KIND_OF[r["type"]], r["signature"]]
            for r in sim.history("anaxer")
            if r.get("type") in _KIND_OF and r["slot"] > after_slot and isinstance(r.get("signature"), str)
        ]
    raise ValueError(f"no such method {method!r}")


def main() -> None:
    options = json.loads(sys.argv[1])
    with Simulator(**options) as sim:
        print(json.dumps({"ports": {p: sim.port(p) for p in sim.providers}}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            if request["method"] == "stop":
                break
            try:
                reply = {"ok": _call(sim, request["method"], request.get("args", []), request.get("kwargs", {}))}
            except Exception as exc:  # reported to the parent, which fails the test
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(reply), flush=True)
    print(json.dumps({"stopped": True}), flush=True)


if __name__ == "__main__":
    main()
