"""Fixtures for the Solana tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pumpsync.simulator import Simulator


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """The simulator's Solana node, quiet (events come from ``sim.emit``)."""
    with Simulator(providers=("solana",), rate=0, seed=21) as sim:
        yield sim
