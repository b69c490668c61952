"""``python -m pumpsync_bench.stages``: the per-stage profile runs on the firehose's frames (no timing asserted)."""

from __future__ import annotations

import pytest

from pumpsync_bench import stages


@pytest.mark.parametrize("provider", ["openpump", "pumpportal"])
def test_every_frame_becomes_an_event_through_every_stage(provider: str) -> None:
    data, mints = stages.frames(provider, 300)
    result = stages.measure(provider, data, mints, rounds=1)
    assert result["events"] == 300  # each blast frame one event: framed, parsed, delivered once, taken
    assert set(result["us_per_event"]) == set(stages.STAGES)
    assert all(us >= 0 for us in result["us_per_event"].values())
    assert stages.line(result).startswith(f"{provider} (300 events), us of CPU per event: framing ")
