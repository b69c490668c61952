"""``pumpsync daemon`` with a geyser source among its ``[[sources]]``; the geyser metrics exported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import FAST_FLAGS, clean_env, wait_until

from pumpsync.simulator import Simulator

pytest.importorskip("grpc")

TOKEN = "gy-DISTINCTIVE-geyser-token-33"


def test_a_geyser_source_in_the_daemon(start_daemon: Any, tmp_path: Path) -> None:
    with Simulator(["geyser", "solana"], rate=20, geyser_ping_interval=0.3) as sim:
        (tmp_path / "gy.key").write_text(TOKEN + "\n")
        config = tmp_path / "geyser.toml"
        config.write_text(
            f"""
race_window = 1

[[sources]]
provider = "geyser"
url = "{sim.url("geyser")}"
rest_url = "{sim.rest_url("geyser")}"
api_key_file = "{tmp_path / "gy.key"}"

[[sources]]
provider = "solana"
url = "{sim.url("solana")}"
"""
        )
        daemon = start_daemon(["--config", str(config), *FAST_FLAGS], env=clean_env())
        daemon.wait_ready()
        wait_until(lambda: (daemon.sample("pumpsync_geyser_pings_total") or 0) > 0, 30, "pings answered")
        wait_until(
            lambda: (
                (daemon.sample("pumpsync_source_first_deliveries_total", source="geyser") or 0)
                + (daemon.sample("pumpsync_source_first_deliveries_total", source="solana") or 0)
                > 0
            ),
            30,
            "events from the sources",
        )
        body = daemon.metrics()
        for name in ("replays", "replayed_slots", "gaps_filled_rpc", "dead_slots"):
            assert f"pumpsync_geyser_{name}_total 0.0" in body or f"pumpsync_geyser_{name}_total" in body
        assert TOKEN not in body and TOKEN not in daemon.stderr and TOKEN not in daemon.stdout
        assert daemon.stop() == 0
