"""The provider dialects as pure code: frames in, outputs out, no sockets."""

from __future__ import annotations

import json

import pytest

from pumpsync._secrets import ApiKey
from pumpsync.errors import AuthenticationError, PlanError
from pumpsync.events import Event
from pumpsync.providers.anaxer import DOCUMENT, V1, Anaxer, normalize
from pumpsync.providers.base import (
    Fatal,
    Hello,
    Malformed,
    Notice,
    Pong,
    Rejected,
    Reply,
    StatusReport,
    Subscribed,
    Subscription,
    Unsubscribed,
)
from pumpsync.providers.openpump import OpenPump

MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
SIG = "5uEezmZnrgk3a1g92qQ3CmbkjtE7j5xV2rbFy43Lt8WeT1MPRjqNLK7g9hzQHZv6kxxLeyujDdX6K69A9LhVpnNa"
SOL = "So11111111111111111111111111111111111111112"


@pytest.fixture(autouse=True, params=["orjson", "stdlib"])
def json_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every dialect test runs with the optional orjson fast path and with the standard library alone."""
    import pumpsync.providers.base as base

    if request.param == "stdlib":
        monkeypatch.setattr(base, "_fast_loads", None)
    elif base._fast_loads is None:
        pytest.skip("orjson is not installed")
    return str(request.param)


def feed(dialect: OpenPump | Anaxer, obj: object) -> list[object]:
    return dialect.receive(json.dumps(obj).encode(), 1_700_000_009_000)


def only_event(outputs: list[object]) -> Event:
    events = [o for o in outputs if isinstance(o, Event)]
    assert len(events) == 1, outputs
    return events[0]


# ---------------------------------------------------------------- OpenPump


class TestOpenPump:
    def setup_method(self) -> None:
        self.d = OpenPump(1, [])

    def test_handshake_query_and_header(self) -> None:
        key = ApiKey("k-123")
        q = self.d.handshake("ws://h/v1/stream", key, "query")
        assert q.url == "ws://h/v1/stream?api_key=k-123" and q.headers == {}
        h = self.d.handshake("ws://h/v1/stream", key, "header")
        assert h.url == "ws://h/v1/stream" and h.headers == {"Authorization": "Bearer k-123"}

    def test_client_frames(self) -> None:
        assert json.loads(self.d.ping()) == {"type": "ping"}
        assert json.loads(self.d.status_request()) == {"type": "status"}

    def test_connected(self) -> None:
        status = {"running": True, "subscriptionId": 12345, "processedCount": 50000}
        out = feed(self.d, {"type": "connected", "message": "hi", "timestamp": 1, "status": status})
        assert out == [Hello(status)]

    def test_new_token(self) -> None:
        e = only_event(
            feed(
                self.d,
                {"type": "new_token", "timestamp": 1700000001000, "mint": MINT, "signature": SIG, "creator": "C"},
            )
        )
        assert (e.kind, e.provider, e.mint, e.signature, e.creator) == ("new_token", "openpump", MINT, SIG, "C")
        assert e.timestamp == 1700000001000 and e.received_at == 1_700_000_009_000 and e.connection == 1
        assert e.slot is None and e.backfill is False

    def test_token_enriched_with_bonding_curve(self) -> None:
        e = only_event(
            feed(
                self.d,
                {
                    "type": "token_enriched",
                    "timestamp": 1,
                    "mint": MINT,
                    "signature": SIG,
                    "creator": "C",
                    "name": "Example Token",
                    "symbol": "EXMP",
                    "description": "d",
                    "image": "https://ipfs.io/x",
                    "bondingCurve": {
                        "progress": 0.15,
                        "solRaised": 1.234,
                        "currentPrice": 1.2345e-8,
                        "marketCap": 12.345,
                    },
                },
            )
        )
        assert (e.kind, e.name, e.symbol, e.image, e.description) == (
            "token_enriched",
            "Example Token",
            "EXMP",
            "https://ipfs.io/x",
            "d",
        )
        assert (e.bonding_curve_progress, e.sol_raised, e.price_sol, e.market_cap_sol) == (
            0.15,
            1.234,
            1.2345e-8,
            12.345,
        )
        d = e.to_dict()
        assert d["bonding_curve_progress"] == 0.15 and d["market_cap_sol"] == 12.345

    @pytest.mark.parametrize("side", ["buy", "sell"])
    def test_trades(self, side: str) -> None:
        e = only_event(
            feed(
                self.d,
                {
                    "type": side,
                    "timestamp": 2,
                    "mint": MINT,
                    "signature": "s",
                    "trader": "T",
                    "solAmount": 0.5,
                    "tokenAmount": 1000000,
                },
            )
        )
        assert (e.kind, e.side, e.sol_amount, e.token_amount, e.trader) == ("trade", side, 0.5, 1000000.0, "T")
        assert e.price_sol == pytest.approx(0.5 / 1e6)
        assert set(e.to_dict()) >= {"side", "sol_amount", "token_amount", "trader", "price_sol"}

    def test_pong_and_status(self) -> None:
        assert feed(self.d, {"type": "pong", "timestamp": 1}) == [Pong()]
        data = {"running": True, "subscriptionId": 1, "processedCount": 2}
        assert feed(self.d, {"type": "status", "data": data, "timestamp": 1}) == [StatusReport(data)]

    def test_unknown_type_surfaces_as_unknown_event(self) -> None:
        out = feed(self.d, {"type": "airdrop", "mint": MINT})
        assert Malformed("unknown_type") in out
        e = only_event(out)
        assert e.kind == "unknown" and e.raw == {"type": "airdrop", "mint": MINT} and e.mint == MINT

    def test_missing_fields(self) -> None:
        out = feed(self.d, {"type": "new_token", "signature": SIG})
        assert Malformed("invalid_fields") in out and only_event(out).kind == "unknown"
        out = feed(self.d, {"type": "buy", "mint": 5, "signature": SIG})
        assert Malformed("invalid_fields") in out

    @pytest.mark.parametrize(
        ("payload", "reason"),
        [(b"not json", "not_json"), (b"[1,2]", "not_object"), (b'"x"', "not_object"), (b"\xff\xfe", "invalid_utf8")],
    )
    def test_bad_frames(self, payload: bytes, reason: str) -> None:
        assert self.d.receive(payload, 0) == [Malformed(reason)]

    def test_close_codes(self) -> None:
        assert self.d.close_policy(1008).refusal is AuthenticationError
        assert self.d.close_policy(4001).refusal is PlanError
        for code in (1000, 1001, 1011, None, 4999):
            assert self.d.close_policy(code).refusal is None


# ---------------------------------------------------------------- Anaxer

V1_CONNECTED = {
    "v": 1,
    "type": "connected",
    "ts": 1,
    "limits": {"connectionsPerStream": 2, "tradesRequiresMints": False, "tradesMintCap": 100},
}
SWAP_BUY = {
    "type": "swap",
    "source": "pumpfun",
    "wallet": "W",
    "volumeUsd": 12.5,
    "swap": {
        "from": {"mint": SOL, "amount": "500000000", "uiAmount": 0.5, "decimals": 9},
        "to": {"mint": MINT, "amount": "1000000000000", "uiAmount": 1000000.0, "decimals": 6},
    },
    "signature": SIG,
    "slot": 309812500,
    "timestamp": 1700000000000,
}
CREATED = {
    "type": "created",
    "source": "pumpfun",
    "mint": MINT,
    "name": "N",
    "symbol": "S",
    "creator": "C",
    "uri": "https://u",
    "mayhemMode": False,
    "socials": {"website": None, "twitter": None, "telegram": None},
    "signature": SIG,
    "slot": 10,
    "timestamp": None,
}


def subs(*channels: str) -> list[Subscription]:
    return [Subscription(ch, {"minSol": 0.5} if ch == "trades" else {}) for ch in channels]


class TestAnaxerV1:
    def setup_method(self) -> None:
        self.d = Anaxer(0, subs("creations", "trades"))
        self.out = feed(self.d, V1_CONNECTED)

    def test_handshake(self) -> None:
        hs = self.d.handshake("wss://api/v1/stream", ApiKey("k"), "header")
        assert hs.headers == {"Authorization": "Bearer k"} and hs.url == "wss://api/v1/stream"
        assert self.d.handshake("wss://api/v1/stream", ApiKey("k"), "query").url == "wss://api/v1/stream?key=k"

    def test_connected_v1_subscribes_with_ids(self) -> None:
        assert self.d.form == V1 and isinstance(self.out[0], Hello)
        frames = [json.loads(o.text) for o in self.out if isinstance(o, Reply)]
        assert frames == [
            {"type": "subscribe", "id": "sub-1", "channel": "creations", "filters": {}},
            {"type": "subscribe", "id": "sub-2", "channel": "trades", "filters": {"minSol": 0.5}},
        ]
        assert json.loads(self.d.ping()) == {"type": "ping"}

    def test_acks_and_data(self) -> None:
        assert feed(
            self.d, {"v": 1, "type": "subscribed", "id": "sub-2", "channel": "trades", "filters": {}, "ts": 1}
        ) == [Subscribed("trades")]
        e = only_event(
            feed(self.d, {"v": 1, "channel": "trades", "type": "swap", "sub": "sub-2", "ts": 1, "data": SWAP_BUY})
        )
        assert (e.kind, e.side, e.mint, e.sol_amount, e.token_amount, e.trader, e.slot) == (
            "trade",
            "buy",
            MINT,
            0.5,
            1000000.0,
            "W",
            309812500,
        )
        assert e.channel == "trades" and e.timestamp == 1700000000000
        assert feed(self.d, {"v": 1, "type": "pong", "ts": 3}) == [Pong()]

    def test_sell_from_legs(self) -> None:
        sell = dict(SWAP_BUY, swap={"from": SWAP_BUY["swap"]["to"], "to": SWAP_BUY["swap"]["from"]})
        e = only_event(feed(self.d, {"v": 1, "channel": "trades", "sub": "sub-2", "data": sell}))
        assert (e.side, e.mint, e.sol_amount, e.token_amount) == ("sell", MINT, 0.5, 1000000.0)

    def test_created_graduated_price(self) -> None:
        e = only_event(feed(self.d, {"v": 1, "channel": "creations", "sub": "sub-1", "data": CREATED}))
        assert (e.kind, e.name, e.symbol, e.uri, e.slot, e.timestamp) == ("new_token", "N", "S", "https://u", 10, None)
        grad = dict(CREATED, type="graduated", liquiditySol=85.0, timeToGraduateSeconds=600)
        e = only_event(feed(self.d, {"v": 1, "channel": "graduations", "sub": "x", "data": grad}))
        assert (e.kind, e.liquidity_sol, e.time_to_graduate_s) == ("graduation", 85.0, 600.0)
        price = {
            "type": "price",
            "source": "pumpfun",
            "mint": MINT,
            "price": {"sol": 3e-8, "usd": 4e-6},
            "marketCapUsd": 4000.0,
            "slot": 11,
            "timestamp": 5,
        }
        e = only_event(feed(self.d, {"v": 1, "channel": "prices", "sub": "x", "data": price}))
        assert (e.kind, e.price_sol, e.price_usd, e.market_cap_usd) == ("price", 3e-8, 4e-6, 4000.0)

    def test_errors(self) -> None:
        out = feed(
            self.d, {"v": 1, "type": "error", "code": "plan_restricted", "message": "no", "id": "sub-2", "ts": 1}
        )
        assert len(out) == 1 and isinstance(out[0], Rejected)
        assert (out[0].error.channel, out[0].error.code) == ("trades", "plan_restricted")
        assert "trades" not in self.d.subscriptions
        (fatal,) = feed(self.d, {"v": 1, "type": "error", "code": "unauthorized", "message": "bad key", "ts": 1})
        assert isinstance(fatal, Fatal) and isinstance(fatal.error, AuthenticationError)
        assert feed(self.d, {"v": 1, "type": "error", "code": "slow_consumer", "message": "m", "ts": 1}) == [
            Notice("slow_consumer", "m")
        ]

    def test_runtime_subscribe_and_unsubscribe(self) -> None:
        (frame,) = self.d.subscribe(Subscription("graduations", {}))
        assert json.loads(frame) == {"type": "subscribe", "id": "sub-3", "channel": "graduations", "filters": {}}
        (frame,) = self.d.unsubscribe("trades")
        assert json.loads(frame) == {"type": "unsubscribe", "id": "sub-2"}
        assert feed(self.d, {"v": 1, "type": "unsubscribed", "id": "sub-2", "ts": 1}) == [Unsubscribed("trades")]

    def test_close_codes(self) -> None:
        assert self.d.close_policy(4001).refusal is AuthenticationError
        for code in (4002, 4003):
            policy = self.d.close_policy(code)
            assert policy.refusal is None and policy.rate_limited
        assert self.d.close_policy(1000).refusal is None


class TestAnaxerDocument:
    def test_hello_timeout_means_document_form(self) -> None:
        d = Anaxer(0, subs("trades"))
        assert d.awaiting_hello and d.ping() is None
        frames = [json.loads(f) for f in d.on_hello_timeout()]
        assert d.form == DOCUMENT and frames == [{"subscribe": "trades", "filters": {"minSol": 0.5}}]
        assert d.ping() is None  # the server pings us in this form

    def test_first_frame_other_than_connected(self) -> None:
        d = Anaxer(0, subs("creations"))
        out = feed(d, {"type": "ping"})
        assert d.form == DOCUMENT
        assert [json.loads(o.text) for o in out if isinstance(o, Reply)] == [
            {"subscribe": "creations"},
            {"type": "pong"},
        ]

    def test_document_frames(self) -> None:
        d = Anaxer(0, subs("creations", "trades"))
        d.on_hello_timeout()
        assert feed(d, {"type": "subscribed", "channel": "trades"}) == [Subscribed("trades")]
        assert feed(d, {"type": "ping"}) == [Reply('{"type": "pong"}')]
        trade = {
            "mint": MINT,
            "priceSol": 3e-8,
            "side": "sell",
            "solAmount": 0.7,
            "tokenAmount": 5.0,
            "signature": SIG,
            "slot": 5,
            "timestamp": 9,
        }
        e = only_event(feed(d, trade))
        assert (e.kind, e.side, e.sol_amount, e.price_sol, e.channel) == ("trade", "sell", 0.7, 3e-8, "trades")
        e = only_event(feed(d, {"mint": MINT, "name": "N", "symbol": "S", "creator": "C", "signature": SIG, "slot": 6}))
        assert e.kind == "new_token" and e.channel == "creations"
        (rej,) = feed(
            d,
            {
                "type": "error",
                "code": "forbidden",
                "channel": "trades",
                "message": "Your plan doesn't include this stream.",
            },
        )
        assert isinstance(rej, Rejected) and rej.error.channel == "trades" and rej.error.code == "forbidden"
        assert json.loads(d.unsubscribe("creations")[0]) == {"unsubscribe": "creations"}
        assert feed(d, {"type": "unsubscribed", "channel": "creations"}) == [Unsubscribed("creations")]

    def test_single_subscription_names_the_channel(self) -> None:
        d = Anaxer(0, subs("graduations"))
        d.on_hello_timeout()
        e = only_event(feed(d, {"mint": MINT, "signature": SIG, "slot": 7}))
        assert e.kind == "graduation"

    def test_record_without_slot_is_unknown(self) -> None:
        d = Anaxer(0, subs("trades"))
        d.on_hello_timeout()
        out = feed(d, {"mint": MINT, "signature": SIG, "side": "buy", "slot": "x"})
        assert only_event(out).kind == "unknown"


def test_normalize_rest_records_match_live_identity() -> None:
    live = normalize(SWAP_BUY, "trades", 1, 0)
    rest = normalize(dict(SWAP_BUY, side="buy", mint=MINT, solAmount=0.5, tokenAmount=1e6), None, 2, 0, backfill=True)
    assert live is not None and rest is not None
    assert live.identity == rest.identity and rest.backfill


def test_event_to_dict_keys() -> None:
    e = normalize(CREATED, "creations", 1, 0)
    assert e is not None
    d = e.to_dict()
    assert list(d)[:10] == [
        "kind",
        "provider",
        "mint",
        "signature",
        "slot",
        "timestamp",
        "received_at",
        "connection",
        "backfill",
        "raw",
    ]
    assert {"name", "symbol", "creator", "uri", "image", "description"} <= set(d)
    json.dumps(d)


def test_shared_signature_different_identity() -> None:
    created = normalize(CREATED, "creations", 1, 0)
    buy = normalize(dict(SWAP_BUY, signature=SIG), "trades", 1, 0)
    assert created is not None and buy is not None
    assert created.signature == buy.signature and created.identity != buy.identity


def test_anaxer_carries_the_learned_document_form_and_recovers_if_the_server_changes() -> None:
    first = Anaxer(0, subs("creations"))
    assert first.awaiting_hello and first.on_open() == []
    first.on_hello_timeout()
    second = Anaxer(0, subs("creations"))
    second.resume(first)
    assert [json.loads(f) for f in second.on_open()] == [{"subscribe": "creations"}]  # at once
    assert not second.awaiting_hello
    third = Anaxer(0, subs("creations"))
    third.resume(second)  # never heard a frame: still carries the guess
    third.on_open()
    out = feed(third, V1_CONNECTED)  # ...but this server now speaks v1
    assert third.form == V1 and isinstance(out[0], Hello)
    assert [json.loads(o.text)["type"] for o in out if isinstance(o, Reply)] == ["subscribe"]
    fourth = Anaxer(0, subs("creations"))
    fourth.resume(third)
    assert fourth.on_open() == [] and fourth.awaiting_hello  # v1 greets first: nothing to guess


# ---------------------------------------------------------------- Event fields, to_dict, from_dict

LAUNCH_KEYS = ["initial_buy_tokens", "initial_buy_sol", "virtual_sol_reserves", "virtual_token_reserves", "pool"]


def test_launch_fields_come_last_so_positional_construction_is_unchanged() -> None:
    launch = Event._fields.index(LAUNCH_KEYS[0])
    assert list(Event._fields[launch : launch + len(LAUNCH_KEYS)]) == LAUNCH_KEYS
    assert Event._fields[launch + len(LAUNCH_KEYS)] == "venue"  # appended after them, same reason
    e = Event("trade", "p", MINT, SIG, 1, 2, 3, 0, False, {}, "trades", "buy", 0.5, 1e6)
    assert (e.channel, e.side, e.sol_amount, e.token_amount) == ("trades", "buy", 0.5, 1e6)
    assert all(getattr(e, key) is None for key in LAUNCH_KEYS)


def test_to_dict_keys_per_kind() -> None:
    def keys(kind: str) -> set[str]:
        return set(Event(kind, "p", None, None, None, None, 0, 0, False, {}).to_dict())

    assert {"market_cap_sol", "price_sol", *LAUNCH_KEYS} <= keys("new_token")
    assert {"side", "sol_amount", "token_amount", "trader", "price_sol", "market_cap_sol"} <= keys("trade")
    assert not set(LAUNCH_KEYS) & (keys("trade") | keys("token_enriched") | keys("graduation") | keys("price"))


def test_openpump_and_anaxer_events_round_trip_through_to_dict() -> None:
    op = OpenPump(0, [])
    curve = {"progress": 1.5, "solRaised": 0.2, "currentPrice": 2.8e-8, "marketCap": 28.0}
    new = only_event(feed(op, {"type": "new_token", "mint": MINT, "signature": SIG, "bondingCurve": curve}))
    d = new.to_dict()
    # OpenPump's new_token may carry a curve: its price and market cap now reach to_dict too.
    assert (d["market_cap_sol"], d["price_sol"], d["bonding_curve_progress"], d["initial_buy_sol"]) == (
        28.0,
        2.8e-8,
        1.5,
        None,
    )
    trade = only_event(feed(op, {"type": "sell", "mint": MINT, "signature": "s", "solAmount": 1, "tokenAmount": 2}))
    events = [new, trade]
    events += [e for e in (normalize(CREATED, "creations", 1, 0), normalize(SWAP_BUY, "trades", 1, 0)) if e]
    assert [e.kind for e in events] == ["new_token", "trade", "new_token", "trade"]
    for e in events:
        assert Event.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    # Anaxer gives neither the first buy, nor reserves, nor a market cap in SOL.
    assert all(getattr(events[2], key) is None for key in LAUNCH_KEYS) and events[3].market_cap_sol is None
