"""Fixtures for the PumpPortal tests: a simulator with a PumpPortal server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pphelpers import PPSim

from pumpsync.simulator import Simulator
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.pumpportal import PumpPortalServer


@pytest.fixture
def pp_sim() -> Iterator[PPSim]:
    """Start simulators with a PumpPortal server (``rate=0``, seed 7 unless given); all stopped after the test.

    Server options (``ban_seconds``, ``bonk_share``, ``mislabelled_share``) go to the PumpPortal server."""
    sims: list[Simulator] = []

    def factory(keys: dict[str, str] | None = None, **kwargs: Any) -> Simulator:
        server_options = {k: kwargs.pop(k) for k in ("ban_seconds", "bonk_share", "mislabelled_share") if k in kwargs}
        server_options.setdefault("bonk_share", 0.0)
        server_options.setdefault("mislabelled_share", 0.0)
        kwargs.setdefault("rate", 0)
        kwargs.setdefault("seed", 7)
        sim = Simulator(providers=("openpump",), keys=keys, **kwargs)
        server = PumpPortalServer("127.0.0.1", 0, KeyTable(keys), seed=kwargs["seed"], **server_options)
        sim._servers["pumpportal"] = server  # until the simulator's provider registry knows pumpportal
        sims.append(sim.start())
        return sim

    yield factory
    for sim in sims:
        sim.stop()
