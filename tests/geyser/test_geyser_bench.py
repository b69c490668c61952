"""The geyser bench workload runs end to end (figures are not asserted: a test never times)."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc")

from pumpsync.events import Event
from pumpsync.providers.base import Subscription
from pumpsync.providers.geyser.dialect import Geyser
from pumpsync_bench.geyser import _stream, run


def test_both_clients_receive_the_whole_stream() -> None:
    count = 400
    dialect = Geyser(0, [Subscription(c) for c in ("creations", "trades", "graduations")])
    decoded = [out for update in _stream(count) for out in dialect.receive(update, 0) if isinstance(out, Event)]
    events = len({event.identity for event in decoded})  # a launch copied under another signature is one launch
    result = run(count)
    assert result["bare"]["messages"] == count
    assert result["pumpsync"]["events"] == events > 0
    assert result["pumpsync"]["cpu_us_per_event"] > 0 and result["bare"]["cpu_us_per_message"] > 0
