"""The simulator's per-provider feed profiles: one market, each provider late and lossy its own way."""

from __future__ import annotations

import json
import time

import pytest
from websockets.sync.client import connect as ws_connect

from pumpsync.simulator import Simulator
from pumpsync.simulator.simulator import FeedProfile


def _launch_mints(sim: Simulator, provider: str) -> set[str]:
    records = sim.history(provider)
    if provider == "openpump":
        return {r["mint"] for r in records if r.get("type") == "new_token"}
    return {r["mint"] for r in records if "name" in r and "mint" in r}


def test_loss_thins_one_provider_and_the_other_keeps_everything() -> None:
    with Simulator(providers=("openpump", "anaxer"), rate=0, seed=7) as sim:
        sim.set_feed("openpump", loss=0.5)
        sim.emit(200, kind="launch")
        full = sim.wait_for(lambda: _launch_mints(sim, "anaxer") if len(_launch_mints(sim, "anaxer")) >= 200 else None)
        thinned = _launch_mints(sim, "openpump")
        assert thinned < full  # a strict subset: only losses, no inventions
        assert 50 < len(thinned) < 150  # about half, from a seeded generator


def test_delay_holds_frames_back_in_order() -> None:
    with Simulator(providers=("openpump",), rate=0, seed=3, enrich_delay=0) as sim:
        sim.set_feed("openpump", delay=(0.3, 0.4))
        url = sim.url("openpump") + "?api_key=k"
        with ws_connect(url) as ws:
            json.loads(ws.recv(timeout=5))  # connected
            sent = time.monotonic()
            events = sim.emit(5, kind="trade")
            got = []
            while len(got) < len([e for e in events if type(e).__name__ == "Trade"]):
                frame = json.loads(ws.recv(timeout=5))
                if frame.get("type") in ("buy", "sell"):
                    got.append(frame["signature"])
            assert time.monotonic() - sent >= 0.3  # not one came before the least delay
            trades = [e.signature for e in events if type(e).__name__ == "Trade"]
            assert got == trades  # batches never overtake each other


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ValueError):
        FeedProfile((0.5, 0.1))
    with pytest.raises(ValueError):
        FeedProfile(loss=1.0)
    with Simulator(providers=("openpump",), rate=0) as sim, pytest.raises(ValueError):
        sim.set_feed("anaxer", loss=0.1)
