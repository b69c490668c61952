"""Fixtures for the PumpPortal tests: simulators serving PumpPortal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pphelpers import PPSim

from pumpsync.simulator import Simulator


@pytest.fixture
def pp_sim() -> Iterator[PPSim]:
    """Start PumpPortal simulators (``rate=0`` and seed 7 unless given; no bonk launches or mislabelled
    mints unless asked for); all stopped after the test. ``ban_seconds``, ``bonk_share`` and
    ``mislabelled_share`` are the ``pumpportal_*`` simulator options."""
    sims: list[Simulator] = []

    def factory(**kwargs: Any) -> Simulator:
        for name, default in (("ban_seconds", None), ("bonk_share", 0.0), ("mislabelled_share", 0.0)):
            value = kwargs.pop(name, default)
            if value is not None:
                kwargs[f"pumpportal_{name}"] = value
        kwargs.setdefault("rate", 0)
        kwargs.setdefault("seed", 7)
        sim = Simulator(providers=("pumpportal",), **kwargs)
        sims.append(sim.start())
        return sim

    yield factory
    for sim in sims:
        sim.stop()
