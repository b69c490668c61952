"""Anaxer REST on the stream's port: paging, filters, auth, rate limits; serves `history`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from simhelpers import REST_ERROR, REST_PAGE, ax_connect, check_schema, op_connect, recv_json

from pumpsync.simulator import Simulator

SimFactory = Callable[..., Simulator]
AUTH = {"Authorization": "Bearer test-key"}


def get(sim: Simulator, path: str, headers: dict[str, str] | None = AUTH, **params: Any) -> requests.Response:
    return requests.get(sim.rest_url("anaxer") + path, params=params, headers=headers, timeout=5)


def page_all(sim: Simulator, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    cursor = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = get(sim, path, **query)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        check_schema(body, REST_PAGE)
        items.extend(body["data"])
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return items, pages


@pytest.fixture
def busy_sim(make_sim: SimFactory) -> Simulator:
    sim = make_sim(providers=("anaxer",))
    sim.emit(3, "graduation")
    sim.emit(300)
    return sim


@pytest.mark.parametrize(
    ("path", "channel"), [("/v1/creations", "creations"), ("/v1/graduations", "graduations"), ("/v1/trades", "trades")]
)
def test_paging_serves_exactly_the_history(busy_sim: Simulator, path: str, channel: str) -> None:
    history = busy_sim.history("anaxer", channel)
    items, pages = page_all(busy_sim, path, limit=7)
    assert items == history
    assert pages == max(1, -(-len(history) // 7))  # next is null on the last page


def test_since_is_inclusive_and_window(busy_sim: Simulator) -> None:
    history = busy_sim.history("anaxer", "trades")
    since = history[len(history) // 2]["slot"]
    items, _ = page_all(busy_sim, "/v1/trades", since=since, limit=50)
    assert items == [r for r in history if r["slot"] >= since]
    assert items[0]["slot"] == since
    body = get(busy_sim, "/v1/trades", since=since, limit=5).json()
    assert body["window"] == {"from": body["data"][0]["slot"], "to": body["data"][-1]["slot"]}
    assert get(busy_sim, "/v1/trades", since=10**12).json()["data"] == []


def test_default_and_max_limit(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    sim.emit(1100, "trade")
    assert len(get(sim, "/v1/trades").json()["data"]) == 100
    assert len(get(sim, "/v1/trades", limit=5000).json()["data"]) == 1000
    assert get(sim, "/v1/trades", limit=0).status_code == 400
    assert get(sim, "/v1/trades", limit="many").status_code == 400
    assert get(sim, "/v1/trades", cursor="garbage!").status_code == 400


def test_filters_and_token_trades(busy_sim: Simulator) -> None:
    history = busy_sim.history("anaxer", "trades")
    buys, _ = page_all(busy_sim, "/v1/trades", exchange="pumpfun", side="buy", minSol=0.3)
    # exchange=pumpfun: the curve's trades (a graduated token's PumpSwap trades have source "pumpswap")
    assert buys == [r for r in history if r["side"] == "buy" and r["solAmount"] >= 0.3 and r["source"] == "pumpfun"]
    mint = history[-1]["mint"]
    by_mint, _ = page_all(busy_sim, f"/v1/tokens/{mint}/trades", limit=3)
    assert by_mint == [r for r in history if r["mint"] == mint]
    assert page_all(busy_sim, "/v1/trades", mint=mint)[0] == by_mint
    assert get(busy_sim, "/v1/trades", exchange="raydium").json()["data"] == []
    assert get(busy_sim, "/v1/trades", minSol="x").status_code == 400


def test_key_in_query_parameter(busy_sim: Simulator) -> None:
    assert get(busy_sim, "/v1/creations", headers=None, key="YOUR_KEY").status_code == 200


@pytest.mark.parametrize("headers", [None, {"Authorization": "Bearer sim-invalid"}])
def test_unauthorized(busy_sim: Simulator, headers: dict[str, str] | None) -> None:
    response = get(busy_sim, "/v1/creations", headers=headers)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/json"
    check_schema(response.json(), REST_ERROR)
    assert response.json()["error"]["code"] == "unauthorized"


def test_rate_limited_key(busy_sim: Simulator) -> None:
    response = get(busy_sim, "/v1/creations", headers={"Authorization": "Bearer sim-ratelimited"})
    assert response.status_code == 429
    assert float(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "rate_limited"


def test_rest_fail_next(busy_sim: Simulator) -> None:
    busy_sim.rest_fail_next(2, retry_after=2.5)
    busy_sim.rest_fail_next(1, status=503)
    first, second = get(busy_sim, "/v1/trades"), get(busy_sim, "/v1/creations")
    assert (first.status_code, second.status_code) == (429, 429)
    assert first.headers["Retry-After"] == "2.5"
    third = get(busy_sim, "/v1/trades")
    assert third.status_code == 503 and "Retry-After" not in third.headers
    assert get(busy_sim, "/v1/trades").status_code == 200


def test_not_found_and_free_plan(busy_sim: Simulator) -> None:
    assert get(busy_sim, "/v1/weather").status_code == 404
    response = get(busy_sim, "/v1/trades", headers={"Authorization": "Bearer sim-free"})
    assert response.status_code == 403
    assert get(busy_sim, "/v1/creations", headers={"Authorization": "Bearer sim-free"}).status_code == 200


def test_stream_and_rest_agree_for_gap_recovery(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        ws.send('{"subscribe": "trades"}')
        recv_json(ws)
        sim.emit(20, "trade")
        streamed = [recv_json(ws) for _ in sim.history("anaxer", "trades")]
    last_slot = streamed[-1]["slot"]
    sim.emit(30, "trade")  # missed while "disconnected"
    backfill, _ = page_all(sim, "/v1/trades", since=last_slot)
    merged = {r["signature"]: r for r in streamed + backfill}
    assert list(merged.values()) == sim.history("anaxer", "trades")


def test_bounded_history_keeps_cursors_valid(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer", "openpump"), history_limit=40)
    sim.emit(30, "trade")
    first = get(sim, "/v1/trades", limit=5).json()
    sim.emit(100, "trade")  # trims the oldest records, including the first page's
    history = sim.history("anaxer", "trades")
    assert len(sim.history("anaxer")) <= 50 and len(sim.history("openpump")) <= 50
    rest = get(sim, "/v1/trades", cursor=first["next"], limit=1000).json()["data"]
    assert rest == history  # the cursor resumes at the oldest record still kept
    with op_connect(sim) as ws:  # processedCount counts trimmed records too
        assert recv_json(ws)["status"]["processedCount"] > 100
