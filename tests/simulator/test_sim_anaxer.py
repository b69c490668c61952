"""Anaxer stream server: both wire forms, auto detection, subscriptions, filters, errors,
heartbeats and close codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from simhelpers import (
    AX_DOC_RECORDS,
    AX_PAYLOADS,
    DOC_ERROR,
    DOC_PING,
    DOC_PONG,
    DOC_SUBSCRIBED,
    DOC_UNSUBSCRIBED,
    V1_CONNECTED,
    V1_DATA,
    V1_ERROR,
    V1_PONG,
    V1_SUB_ERROR,
    V1_SUBSCRIBED,
    V1_UNSUBSCRIBED,
    assert_silent,
    ax_connect,
    check_schema,
    expect_close,
    recv_json,
    recv_until,
)
from websockets.sync.client import ClientConnection

from pumpsync.simulator import Simulator

SimFactory = Callable[..., Simulator]

try:  # The provider's SDK pins websockets<14: CI runs this file again in its own venv (.ci/run).
    from anaxer import models as sdk
except ModuleNotFoundError:
    sdk = None
SDK_ABSENT = "the anaxer SDK is not installed (pip install 'pumpsync[fidelity]'; .ci/run runs it in its own venv)"


def sdk_validate(model: str, payload: dict[str, Any]) -> None:
    """The SDK's own pydantic model accepts the frame (when the SDK is installed: the JSON-schema
    checks run everywhere; test_the_sdk_models_are_checked says in -rs when this is skipped)."""
    if sdk is not None:
        getattr(sdk, model).model_validate(payload)


def sdk_validate_payload(channel: str, payload: dict[str, Any]) -> None:
    if sdk is not None:
        sdk.CHANNEL_PAYLOAD_MODELS[channel].model_validate(payload)


@pytest.mark.skipif(sdk is None, reason=SDK_ABSENT)
def test_the_sdk_models_are_checked() -> None:
    assert sdk is not None and set(CHANNELS) <= set(sdk.CHANNEL_PAYLOAD_MODELS)


CHANNELS = ("trades", "creations", "graduations", "prices")


def doc_subscribe(ws: ClientConnection, channel: str, filters: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"subscribe": channel}
    if filters is not None:
        msg["filters"] = filters
    ws.send(json.dumps(msg))
    reply: dict[str, Any] = recv_until(ws, lambda m: m.get("type") in ("subscribed", "error"))
    return reply


def v1_subscribe(
    ws: ClientConnection, sub_id: str, channel: str, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    ws.send(json.dumps({"type": "subscribe", "id": sub_id, "channel": channel, "filters": filters or {}}))
    reply: dict[str, Any] = recv_until(ws, lambda m: m.get("type") in ("subscribed", "error"))
    return reply


def collect(ws: ClientConnection, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The next ``n`` data messages (skipping control frames)."""
    out = []
    while len(out) < n:
        msg = recv_until(ws, lambda m: m.get("type") not in ("ping", "pong", "subscribed"), timeout)
        out.append(msg)
    return out


# -- forms and record shapes ---------------------------------------------------------------


def test_auto_sends_v1_connected_then_document_client_gets_document_records(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        connected = recv_json(ws)
        check_schema(connected, V1_CONNECTED)
        sdk_validate("ConnectedMessageV1", connected)
        assert sim.connections("anaxer")[0].form is None
        for channel in CHANNELS:
            check_schema(doc_subscribe(ws, channel), {**DOC_SUBSCRIBED, "channel": ("=", channel)})
        assert sim.connections("anaxer")[0].form == "document"
        sim.emit(1, "graduation")
        sim.emit(20)
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 5
        while len(seen) < 4:
            assert time.monotonic() < deadline
            record = collect(ws, 1)[0]
            seen.setdefault(record["type"], record)
    check_schema(seen["swap"], AX_DOC_RECORDS["trades"])
    check_schema(seen["created"], AX_DOC_RECORDS["creations"])
    check_schema(seen["graduated"], AX_DOC_RECORDS["graduations"])
    check_schema(seen["price"], AX_DOC_RECORDS["prices"])
    trade = seen["swap"]
    assert trade["side"] in ("buy", "sell")
    assert trade["priceSol"] == pytest.approx(trade["solAmount"] / trade["tokenAmount"])
    for record in seen.values():  # the SDK's models accept document records too (extras ignored)
        kind = {"swap": "trades", "created": "creations", "graduated": "graduations", "price": "prices"}
        sdk_validate_payload(kind[record["type"]], record)


def test_auto_v1_client_gets_v1_frames(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim, bearer=True) as ws:
        recv_json(ws)
        for n, channel in enumerate(CHANNELS):
            ack = v1_subscribe(ws, f"s{n}", channel, {"sources": ["pumpfun"]})
            check_schema(ack, V1_SUBSCRIBED)
            sdk_validate("SubscribedMessageV1", ack)
            assert (ack["id"], ack["channel"], ack["filters"]) == (f"s{n}", channel, {"sources": ["pumpfun"]})
        info = sim.connections("anaxer")[0]
        assert info.form == "v1"
        assert [(s.id, s.channel) for s in info.subscriptions] == [(f"s{n}", c) for n, c in enumerate(CHANNELS)]
        sim.emit(1, "graduation")
        sim.emit(20)
        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 5
        while len(seen) < 4:
            assert time.monotonic() < deadline
            frame = collect(ws, 1)[0]
            check_schema(frame, V1_DATA)
            assert frame["sub"] == f"s{CHANNELS.index(frame['channel'])}"
            seen.setdefault(frame["channel"], frame)
    for channel, frame in seen.items():
        check_schema(frame["data"], AX_PAYLOADS[channel])  # pure v1 payload, no document extras
        assert frame["type"] == frame["data"]["type"]
        sdk_validate_payload(channel, frame["data"])


def test_pinned_document_form_sends_no_connected_frame(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), anaxer_form="document")
    with ax_connect(sim) as ws:
        sim.wait_for_connections("anaxer", 1)
        assert sim.connections("anaxer")[0].form == "document"
        check_schema(doc_subscribe(ws, "creations"), DOC_SUBSCRIBED)  # first frame is the ack
        ws.send(json.dumps({"type": "subscribe", "id": "x", "channel": "trades"}))
        error = recv_json(ws)
        assert error["type"] == "error" and error["code"] == "invalid_message"


def test_pinned_v1_form_rejects_document_messages(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), anaxer_form="v1")
    with ax_connect(sim) as ws:
        assert recv_json(ws)["type"] == "connected"
        assert sim.connections("anaxer")[0].form == "v1"
        ws.send(json.dumps({"subscribe": "trades"}))
        check_schema(recv_json(ws), V1_ERROR)
        check_schema(v1_subscribe(ws, "a", "trades"), V1_SUBSCRIBED)


# -- subscriptions, filters, errors ----------------------------------------------------------


def test_document_unsubscribe_and_multiple_channels(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        doc_subscribe(ws, "creations")
        doc_subscribe(ws, "trades")
        ws.send(json.dumps({"unsubscribe": "trades"}))
        check_schema(recv_json(ws), {**DOC_UNSUBSCRIBED, "channel": ("=", "trades")})
        assert [s.channel for s in sim.wait_for_connections("anaxer", 1)[0].subscriptions] == ["creations"]
        events = sim.emit(5, "launch") + sim.emit(10, "trade")
        launches = [e for e in events if e.kind == "launch"]
        records = collect(ws, len(launches))
        assert [r["mint"] for r in records] == [e.mint for e in launches]
        assert_silent(ws, 0.2)


def test_document_filters_side_min_sol_exchange(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        doc_subscribe(ws, "trades", {"exchange": "pumpfun", "side": "buy", "minSol": 0.5, "someFutureKey": 1})
        sim.emit(200, "trade")
        expected = [r for r in sim.history("anaxer", "trades") if r["side"] == "buy" and r["solAmount"] >= 0.5]
        assert expected
        assert collect(ws, len(expected)) == expected
        assert_silent(ws, 0.2)


def test_v1_filters_mints_wallets_volume(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        launch = sim.emit(1, "launch")[0]
        v1_subscribe(ws, "m", "trades", {"mints": [launch.mint], "minVolumeUsd": 10.0, "solOnly": True})
        v1_subscribe(ws, "c", "creations", {"sources": ["other-launchpad"]})
        before = len(sim.history("anaxer", "trades"))  # the creator's buy went out unsubscribed
        sim.emit(150, "trade")
        expected = [
            r for r in sim.history("anaxer", "trades")[before:] if r["mint"] == launch.mint and r["volumeUsd"] >= 10.0
        ]
        assert expected
        frames = collect(ws, len(expected))
        assert [f["data"]["signature"] for f in frames] == [r["signature"] for r in expected]
        assert {f["sub"] for f in frames} <= {"m"}
        assert_silent(ws, 0.2)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "subscribe", "id": "a", "channel": "weather"}, "unknown_channel"),
        ({"type": "subscribe", "id": "a", "channel": "trades", "filters": {"sources": "pumpfun"}}, "invalid_filters"),
        ({"type": "subscribe", "id": "a", "channel": "trades", "filters": {"minVolumeUsd": "10"}}, "invalid_filters"),
        ({"type": "unsubscribe", "id": "nope"}, "unknown_subscription"),
    ],
)
def test_v1_subscription_errors(make_sim: SimFactory, message: dict[str, Any], code: str) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        ws.send(json.dumps(message))
        error = recv_json(ws)
        check_schema(error, V1_SUB_ERROR)
        sdk_validate("ErrorMessageV1", error)
        assert error["code"] == code and error["id"] == message["id"]


def test_v1_duplicate_id_and_unsubscribe(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        v1_subscribe(ws, "a", "trades")
        assert v1_subscribe(ws, "a", "creations")["code"] == "duplicate_id"
        ws.send(json.dumps({"type": "unsubscribe", "id": "a"}))
        unsub = recv_json(ws)
        check_schema(unsub, V1_UNSUBSCRIBED)
        assert unsub["id"] == "a"
        assert sim.connections("anaxer")[0].subscriptions == []
        ws.send("not json")
        assert recv_json(ws)["code"] == "invalid_message"


def test_free_plan_cannot_stream_trades(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim, "sim-free") as ws:
        assert recv_json(ws)["limits"]["connectionsPerStream"] == 1
        error = doc_subscribe(ws, "trades")
        check_schema(error, DOC_ERROR)
        assert error == {
            "type": "error",
            "code": "forbidden",
            "channel": "trades",
            "message": "Your plan doesn't include this stream.",
        }
        assert doc_subscribe(ws, "creations")["type"] == "subscribed"
    with ax_connect(sim, "sim-free") as ws:
        recv_json(ws)
        error = v1_subscribe(ws, "t", "trades")
        assert (error["code"], error["id"]) == ("plan_restricted", "t")


def test_document_errors_for_bad_filters_and_channel(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        error = doc_subscribe(ws, "trades", {"minSol": "lots"})
        check_schema(error, DOC_ERROR)
        assert error["code"] == "invalid_filters"
        error = doc_subscribe(ws, "weather")
        assert (error["code"], error["channel"]) == ("unknown_channel", "weather")


# -- heartbeats ------------------------------------------------------------------------------


def test_server_pings_document_clients_and_closes_on_missing_pong(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), anaxer_form="document", anaxer_ping_interval=0.2, anaxer_pong_timeout=1.0)
    with ax_connect(sim) as answering, ax_connect(sim) as silent:
        ping = recv_json(answering)
        check_schema(ping, DOC_PING)
        answering.send(json.dumps({"type": "pong"}))
        assert recv_json(answering)["type"] == "ping"
        answering.send(json.dumps({"type": "pong"}))
        assert recv_json(silent)["type"] == "ping"
        code, reason = expect_close(silent)
        assert (code, reason) == (1000, "pong timeout")
        info = sim.wait_for_connections("anaxer", 1)[0]
        assert info.pings_sent >= 2 and info.pongs_received >= 2


def test_v1_clients_are_not_pinged_and_client_pings_get_pongs(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",), anaxer_ping_interval=0.1, anaxer_pong_timeout=0.1)
    with ax_connect(sim) as ws:
        recv_json(ws)
        v1_subscribe(ws, "a", "creations")
        ws.send(json.dumps({"type": "ping"}))
        check_schema(recv_json(ws), V1_PONG)
        assert_silent(ws, 0.4)  # several ping intervals: no server ping, no close
        info = sim.connections("anaxer")[0]
        assert (info.pings_sent, info.client_pings) == (0, 1)
    with ax_connect(sim) as ws:  # a document client's own ping is answered too
        recv_json(ws)
        doc_subscribe(ws, "creations")
        ws.send(json.dumps({"type": "ping"}))
        check_schema(recv_until(ws, lambda m: m["type"] == "pong"), DOC_PONG)


# -- keys and close codes --------------------------------------------------------------------


@pytest.mark.parametrize(("key", "code"), [(None, 4001), ("sim-invalid", 4001), ("sim-ratelimited", 4002)])
def test_refused_keys_close_codes(make_sim: SimFactory, key: str | None, code: int) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim, key) as ws:
        assert expect_close(ws)[0] == code


def test_invalid_key_v1_error_precedes_4001(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim, "sim-invalid") as ws:
        error = recv_json(ws)
        check_schema(error, V1_ERROR)
        assert error["code"] == "unauthorized"
        assert expect_close(ws)[0] == 4001


def test_connection_limit_closes_with_4003(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim, "sim-pro") as a, ax_connect(sim, "sim-pro") as b:
        assert recv_json(a)["limits"]["connectionsPerStream"] == 2
        recv_json(b)
        with ax_connect(sim, "sim-pro") as c:
            assert expect_close(c)[0] == 4003
    with ax_connect(sim, "sim-free") as a:
        recv_json(a)
        with ax_connect(sim, "sim-free") as b:
            assert expect_close(b)[0] == 4003


def test_stop_closes_with_1001(make_sim: SimFactory) -> None:
    sim = make_sim(providers=("anaxer",))
    with ax_connect(sim) as ws:
        recv_json(ws)
        sim.stop()
        assert expect_close(ws)[0] == 1001
