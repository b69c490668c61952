"""Helpers for the PumpPortal tests: the captured frames and a few valid addresses."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pumpsync.simulator import Simulator
from pumpsync.simulator.pumpportal import PumpPortalServer

PPSim = Callable[..., Simulator]  # the pp_sim fixture
CAPTURED = Path(__file__).with_name("captured_frames.txt")


def captured_lines() -> list[str]:
    """The captured frames, verbatim, in file order."""
    return [line for line in CAPTURED.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def captured() -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured_lines()]


def control_frames() -> list[str]:
    return [line for line in captured_lines() if '"message"' in line]


def data_frame(signature_prefix: str) -> str:
    """The captured data frame whose signature starts with ``signature_prefix`` (verbatim text)."""
    (line,) = [line for line in captured_lines() if f'"signature":"{signature_prefix}' in line]
    return line


# Valid base58 addresses for subscriptions (not from any capture).
MINT_A = "8yZ1rj5nHbUFuCbnoowE6rHLZYiuTe1tbxEskgzUpump"
MINT_B = "5Q1wj11auXNg4ckBUEagq2FxzQD5XUo5Gdz8UNaApump"
MINT_C = "5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump"
WALLET = "3JQvkiF2GKfca3ggMPRwTHmzvnj6emReuSFwSrBBonp5"


def many_keys(n: int) -> list[str]:
    """``n`` distinct, valid-looking base58 keys."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    out = []
    for i in range(n):
        digits = ""
        value = i
        for _ in range(6):
            value, rem = divmod(value, 58)
            digits = alphabet[rem] + digits
        out.append("Key" + "1" * 35 + digits)
    return out


def pp_url(sim: Simulator) -> str:
    url = sim.url("pumpportal")
    assert url.endswith("/api/data")
    return url


def pp_server(sim: Simulator) -> PumpPortalServer:
    server = sim._server("pumpportal")
    assert isinstance(server, PumpPortalServer)
    return server
