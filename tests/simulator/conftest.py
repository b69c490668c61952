"""Fixtures for the simulator tests (helpers live in ``simhelpers``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pumpsync.simulator import Simulator


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulator]]:
    """Start simulators (``rate=0`` unless given) and stop them all after the test."""
    sims: list[Simulator] = []

    def factory(**kwargs: Any) -> Simulator:
        kwargs.setdefault("rate", 0)
        sim = Simulator(**kwargs).start()
        sims.append(sim)
        return sim

    yield factory
    for sim in sims:
        sim.stop()


@pytest.fixture(autouse=True)
def _no_thread_leak() -> Iterator[None]:
    """Every test must leave no thread behind (client threads end once sockets close)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"threads left behind: {extra}")
        time.sleep(0.01)
