"""Issue 18, item 17: provider timestamps in seconds, far in the past or in the future added
decades to the delay histogram or showed as 0 (hiding clock skew). Over a real socket, from a
server that sends such frames: they are counted by reason and kept out of the delay figures."""

from __future__ import annotations

import json
import time
from typing import Any

from hardening_support import RawWs, RawWsServer

from pumpsync._stats import DELAY_FUTURE_TOLERANCE, DELAY_PAST_LIMIT, ClientStats
from pumpsync.metrics import start_metrics_server
from tests.conftest import drain
from tests.daemon.daemonhelpers import http_get

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
SIG = "5uEezmZnrgk3a1g92qQ3CmbkjtE7j5xV2rbFy43Lt8WeT1MPRjqNLK7g9hzQHZv6kxxLeyujDdX6K69A9LhVpnNa"
DAY_MS = 86_400_000


def trade(n: int, timestamp: int) -> str:
    return json.dumps({"type": "buy", "mint": MINT, "signature": f"{SIG[:-6]}{n:06d}", "solAmount": 1.0,
                       "tokenAmount": 10.0, "trader": "T", "timestamp": timestamp})  # fmt: skip


def test_implausible_timestamps_are_counted_and_kept_out_of_the_delay(servers: Any, make_client: Any) -> None:
    def script(ws: RawWs) -> None:
        now = int(time.time() * 1000)
        stamps = [
            now // 1000,  # seconds where milliseconds are due: "55 years ago"
            now - 2 * DAY_MS,  # a replay, or a broken clock
            now + 3_600_000,  # the provider's clock an hour ahead of ours
            now - 40,  # an honest one
        ]
        for n, stamp in enumerate(stamps):
            ws.send_text(trade(n, stamp))
        ws.hold()

    server = servers(RawWsServer(script))
    client = make_client("openpump", server.url, ping_interval=30, pong_timeout=5, stale_timeout=30).start()
    events = drain(client, 4)
    assert [e.kind for e in events] == ["trade"] * 4  # still delivered: only the delay figure leaves them out
    stats = client.raw_stats
    assert dict(stats.implausible) == {"past": 2, "future": 1}
    assert stats.delay.count == 1 and 0 <= stats.delay.sum < DELAY_PAST_LIMIT
    with start_metrics_server(client, "127.0.0.1:0") as metrics:
        body = http_get(metrics.url + "/metrics")[1]
    assert 'pumpsync_implausible_timestamps_total{provider="openpump",reason="past"} 2.0' in body
    assert 'pumpsync_implausible_timestamps_total{provider="openpump",reason="future"} 1.0' in body
    assert 'pumpsync_event_delay_seconds_count{provider="openpump"} 1.0' in body


def test_the_plausibility_window() -> None:
    stats = ClientStats("openpump", 10, [])
    for delay in (-DELAY_FUTURE_TOLERANCE, -0.2, 0.0, 0.05, 59.0, DELAY_PAST_LIMIT):
        stats.observe_delay(delay)
    assert stats.delay.count == 6 and not stats.implausible  # a little skew still counts, as 0
    stats.observe_delay(-DELAY_FUTURE_TOLERANCE - 0.001)
    stats.observe_delay(DELAY_PAST_LIMIT + 0.001)
    stats.observe_delay(1.7e9)  # a timestamp in seconds
    assert stats.delay.count == 6 and dict(stats.implausible) == {"future": 1, "past": 2}
