"""The PumpPortal dialect as pure code: frames in, outputs out, no sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pphelpers import MINT_A, MINT_B, MINT_C, WALLET, captured_lines, control_frames, data_frame, many_keys
from test_dialects import json_parser  # noqa: F401 - every test with orjson and with the stdlib

from pumpsync._secrets import ApiKey, redact, safe_url
from pumpsync.errors import ConfigurationError, PlanError, SubscriptionRejected
from pumpsync.events import Event
from pumpsync.providers._pumpportal_wire import (
    ACK_KEYS,
    ACK_MIGRATIONS,
    ACK_NEW_TOKENS,
    MESSAGES_PER_WINDOW,
    UNFUNDED,
    check_filters,
    merge,
    remove,
)
from pumpsync.providers.base import Dropped, Fatal, Malformed, Notice, Output, Rejected, Reply, Subscribed, Subscription
from pumpsync.providers.pumpportal import SPEC, PumpPortal

T0 = 1_764_000_000_000
KEY = ApiKey("pp-secret-key-123")
DEFAULT = [Subscription("new_tokens"), Subscription("migrations")]


def dialect(subs: list[Subscription] | None = None, key: ApiKey = KEY, **kwargs: Any) -> PumpPortal:
    d = PumpPortal(0, DEFAULT if subs is None else subs, **kwargs)
    d.handshake(PumpPortal.default_url, key, "query")
    return d


def feed(d: PumpPortal, frame: str | dict[str, Any], at: int = T0) -> list[Output]:
    text = frame if isinstance(frame, str) else json.dumps(frame)
    return d.receive(text.encode(), at)


def only_event(outputs: list[Output]) -> Event:
    events = [o for o in outputs if isinstance(o, Event)]
    assert len(events) == 1, outputs
    return events[0]


def sent(frames: list[str]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames]


# ---------------------------------------------------------------- connecting


def test_key_is_optional_and_goes_in_the_api_key_parameter() -> None:
    d = PumpPortal(0, DEFAULT)
    assert d.handshake("wss://pumpportal.fun/api/data", None, "query").url == "wss://pumpportal.fun/api/data"
    assert d.handshake("wss://pumpportal.fun/api/data", ApiKey(""), "query").url == "wss://pumpportal.fun/api/data"
    h = PumpPortal(0, DEFAULT).handshake("wss://pumpportal.fun/api/data", KEY, "query")
    assert h.url == "wss://pumpportal.fun/api/data?api-key=pp-secret-key-123" and h.headers == {}
    assert "pp-secret-key-123" not in redact(h.url)  # the generic redaction knows api-key=
    assert safe_url(h.url) == "wss://pumpportal.fun"


def test_on_open_subscribes_every_channel_of_the_registry() -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A, MINT_B]})])
    assert sent(d.on_open()) == [
        {"method": "subscribeNewToken"},
        {"method": "subscribeMigration"},
        {"method": "subscribeTokenTrade", "keys": [MINT_A, MINT_B]},
    ]
    d = dialect([Subscription("account_trades", {"keys": [WALLET]})])
    assert sent(d.on_open()) == [{"method": "subscribeAccountTrade", "keys": [WALLET]}]


def test_spec() -> None:
    assert SPEC.name == "pumpportal" and SPEC.dialect is PumpPortal
    assert SPEC.channels == ("new_tokens", "migrations", "token_trades", "account_trades")
    assert SPEC.default_channels == ("new_tokens", "migrations")
    assert SPEC.max_connections == 1 and "ban" in SPEC.max_connections_reason
    assert SPEC.heartbeat == "none" and SPEC.key_required is False and SPEC.history is None
    assert SPEC.default_url == "wss://pumpportal.fun/api/data"
    assert PumpPortal(0, []).ping() is None
    # The Dropped reasons the dialect gives, exported at 0 in pumpsync_filtered_frames_total.
    assert SPEC.filter_reasons == ("other_pool", "unsubscribed")
    assert feed(dialect([Subscription("new_tokens")]), data_frame("52MoT")) == [Dropped("unsubscribed")]


# ---------------------------------------------------------------- control frames (captured)


def test_captured_acknowledgements_become_subscribed() -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})])
    d.on_open()
    new_tokens, migration, keys, _unfunded = control_frames()
    assert feed(d, new_tokens) == [Subscribed("new_tokens")]
    assert feed(d, migration) == [Subscribed("migrations")]
    assert feed(d, keys) == [Subscribed("token_trades")]
    assert json.loads(new_tokens)["message"] == ACK_NEW_TOKENS and json.loads(migration)["message"] == ACK_MIGRATIONS
    assert json.loads(keys)["message"] == ACK_KEYS


def test_keys_acks_are_matched_to_the_subscribe_messages_in_order() -> None:
    d = dialect([Subscription("account_trades", {"keys": [WALLET]}), Subscription("token_trades", {"keys": [MINT_A]})])
    d.on_open()
    assert feed(d, {"message": ACK_KEYS}) == [Subscribed("account_trades")]
    assert feed(d, {"message": ACK_KEYS}) == [Subscribed("token_trades")]
    assert feed(d, {"message": ACK_KEYS}) == []  # nothing awaited: ignored


@pytest.mark.parametrize(("key", "code"), [(KEY, "unfunded_key"), (ApiKey(""), "no_api_key")])
def test_the_unfunded_message_rejects_the_trade_channels_and_the_free_ones_go_on(key: ApiKey, code: str) -> None:
    subs = [
        *DEFAULT,
        Subscription("token_trades", {"keys": [MINT_A]}),
        Subscription("account_trades", {"keys": [WALLET]}),
    ]
    d = dialect(subs, key=key)
    d.on_open()
    unfunded = control_frames()[3]
    assert json.loads(unfunded)["message"] == UNFUNDED
    out = feed(d, unfunded)
    assert [type(o) for o in out] == [Rejected, Rejected]
    errors = [o.error for o in out if isinstance(o, Rejected)]
    assert [e.channel for e in errors] == ["token_trades", "account_trades"]
    assert all(isinstance(e, SubscriptionRejected) and e.code == code and e.provider == "pumpportal" for e in errors)
    assert "0.02 SOL" in str(errors[0]) and "pp-secret-key-123" not in str(errors[0])
    assert set(d.subscriptions) == {"new_tokens", "migrations"}
    assert only_event(feed(d, data_frame("3ShNE"))).kind == "new_token"  # launches keep coming
    # A later subscription on the same socket is acknowledged by the server, and refused here.
    d.subscribe(Subscription("token_trades", {"keys": [MINT_B]}))
    (rejected,) = feed(d, {"message": ACK_KEYS})
    assert isinstance(rejected, Rejected) and rejected.error.code == code


def test_ack_then_unfunded_message_in_the_servers_order() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]})])
    d.on_open()
    assert feed(d, {"message": ACK_KEYS}) == [Subscribed("token_trades")]
    out, fatal = feed(d, {"message": UNFUNDED})
    assert isinstance(out, Rejected) and out.error.channel == "token_trades"
    # Nothing is left subscribed: the stream ends with the refusal instead of idling (issue 22, item 13).
    assert isinstance(fatal, Fatal) and isinstance(fatal.error, PlanError) and fatal.error.error_code == "unfunded_key"


@pytest.mark.parametrize(
    ("errors", "code"),
    [
        ("Invalid API key", "invalid_api_key"),
        (["Too many subscription messages"], "rate_limited"),
        ({"keys": "must be a list"}, "provider_error"),
    ],
)
def test_errors_frames_become_typed_notices(errors: Any, code: str) -> None:
    (out,) = feed(dialect(), {"errors": errors})
    assert isinstance(out, Notice) and out.code == code


def test_an_errors_frame_echoing_the_key_is_redacted() -> None:
    (out,) = feed(dialect(), {"errors": f"bad key {KEY.reveal()}"})
    assert isinstance(out, Notice) and KEY.reveal() not in out.message


def test_other_message_texts_are_notices_and_odd_ones_unknown() -> None:
    assert feed(dialect(), {"message": "Unsubscribed from keys."}) == [
        Notice("provider_message", "Unsubscribed from keys.")
    ]
    out = feed(dialect(), {"message": 5})
    assert Malformed("invalid_fields") in out and only_event(out).kind == "unknown"


# ---------------------------------------------------------------- data frames (captured)


def test_captured_create_every_field() -> None:
    e = only_event(feed(dialect(), data_frame("3ShNE")))
    assert e == Event(
        kind="new_token",
        provider="pumpportal",
        mint="8yZ1rj5nHbUFuCbnoowE6rHLZYiuTe1tbxEskgzUpump",
        signature="3ShNEcfKhWrvFVTwHCK7FjgWXABAZgo9Cpr2S6AGngg9xDifcQyY2mGQQ85p11vxSRvQ3B3SbaajobL1rfSJmyjG",
        slot=None,
        timestamp=None,
        received_at=T0,
        connection=0,
        backfill=False,
        raw=json.loads(data_frame("3ShNE")),
        channel="new_tokens",
        name="Cash Elon ",  # as given: the trailing space is the creator's
        symbol="CASHELON",
        creator="HDypasvYsG5MuABAfaTf78FVYMmYedcbefZ7pxWEhVQV",
        uri="https://ipfs.io/ipfs/bafkreid55z3ln7vg3udpgagfeumjcd7stnfqri7zkc4n227eq4vs24rdj4",
        market_cap_sol=28.069557848389476,
        price_sol=30.059259257999976 / 1070884672.297204,
        initial_buy_tokens=2115327.702796,  # the creator's first buy: tokens, then SOL
        initial_buy_sol=0.059259258,
        virtual_sol_reserves=30.059259257999976,  # after that buy: 30 SOL + 0.059
        virtual_token_reserves=1070884672.297204,
        pool="pump",
    )
    # The operator's bonding-curve key is occasionally wrong: it stays in raw only.
    assert e.raw["bondingCurveKey"] == "Hgaf727Ccy1YfWAZ77otqmqW5QY8avMXi4pkbRdiomrH"
    assert e.price_sol is not None and e.price_sol * 1e9 == pytest.approx(e.market_cap_sol, rel=1e-9)
    # A launch is told by its mint, from any provider.
    assert e.to_dict()["creator"] == e.creator and e.identity == ("new_token", e.mint)
    d = e.to_dict()
    assert (d["initial_buy_tokens"], d["initial_buy_sol"], d["market_cap_sol"], d["pool"]) == (
        2115327.702796,
        0.059259258,
        28.069557848389476,
        "pump",
    )
    assert Event.from_dict(json.loads(json.dumps(d))) == e


def test_captured_create_with_an_integer_amount() -> None:
    e = only_event(feed(dialect(), data_frame("4LiEU")))
    assert (e.kind, e.mint, e.name, e.symbol, e.creator) == (
        "new_token",
        "5Q1wj11auXNg4ckBUEagq2FxzQD5XUo5Gdz8UNaApump",
        "America First Coalition",
        "AMERICA",
        "satoshid33F5UWoeCy6itHuWUodVUT1pPwbdHM3yti6",
    )
    assert e.uri == "https://metadata.j7tracker.io/metadata/b14043e13297466b.json"
    assert e.signature == ("4LiEUCpZpjNgVyd32FyvNcYKzDLzUDHibB13VGN4Dqs8FcPCjePUwDP4yLeVFdxFqkuJeaFd89C5VcHsdXFjgXDZ")
    assert e.market_cap_sol == 31.811121466293816 and e.price_sol == 31.999999999999968 / 1005937500.000001
    assert e.raw["solAmount"] == 2 and e.raw["is_mayhem_mode"] is False
    assert (e.initial_buy_sol, e.initial_buy_tokens) == (2.0, 67062499.999999) and type(e.initial_buy_sol) is float
    assert (e.virtual_sol_reserves, e.virtual_token_reserves) == (31.999999999999968, 1005937500.000001)
    assert (e.slot, e.timestamp, e.channel) == (None, None, "new_tokens")


def test_captured_bonk_launch_is_dropped_by_default_and_kept_with_a_pools_filter() -> None:
    assert feed(dialect(), data_frame("2smh7")) == [Dropped("other_pool")]
    d = dialect([Subscription("new_tokens", {"pools": ["pump", "bonk"]})])
    e = only_event(feed(d, data_frame("2smh7")))
    assert (e.kind, e.mint, e.signature, e.name, e.symbol, e.uri, e.creator) == (
        "new_token",
        "7VzfCJYiiQTVCeLumVrxQ8z1tGuFcQ75z5GMXQR2surg",
        "2smh7KZFp58k1DyQq67Fraep1MsSyiry7Q66EHALpZV1Fg34c1MvYp5SuXLozfzBF8r8d1roo9XgZyS9zrgZc4Z",
        "Blume",
        "BLUME",
        "https://ipfs.io/ipfs/QmVGxiWSGprdNoUBghjurgb3Hxm1UAU6ZJTHnhzidT6Rc7",
        "BWwDyKhHSJ8h3YNVws8mr6Ek3kP4orSstuLTSLcbgV9t",
    )
    # No virtual reserves on a bonk launch (solInPool/tokensInPool are real ones): no curve price.
    assert e.price_sol is None and e.market_cap_sol == 29.72713613571716 and e.pool == "bonk"
    assert (e.virtual_sol_reserves, e.virtual_token_reserves) == (None, None)
    assert (e.initial_buy_tokens, e.initial_buy_sol) == (32425292.22108698, 0.89055)


def test_a_trade_after_graduation_is_a_pumpswap_trade() -> None:
    """PumpPortal's trade frames name the venue in ``pool``: ``pump`` (the curve), ``pump-amm``
    (the token's PumpSwap pool, after graduation); an unknown pool tells nothing."""
    d = dialect([Subscription("token_trades", {"keys": ["5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump"]})])
    frame = json.loads(data_frame("5EMqq"))
    venues = []
    for pool in ("pump", "pump-amm", "raydium", None):
        if pool is None:
            frame.pop("pool")
        else:
            frame["pool"] = pool
        venues.append(only_event(feed(d, json.dumps(frame))).venue)
    assert venues == ["curve", "pumpswap", None, "curve"]  # frames before the field were all the curve's


def test_captured_buy_every_field() -> None:
    d = dialect([Subscription("token_trades", {"keys": ["5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump"]})])
    e = only_event(feed(d, data_frame("5EMqq")))
    assert e == Event(
        kind="trade",
        provider="pumpportal",
        mint="5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump",
        signature="5EMqqRbMjAPF4tBPNw1TJNv6LcFyFMJ8rhXJfVihaZVSYkvorn2j85o4h222XGDretUX4MR54MsnRUhXuMfT6SiF",
        slot=None,
        timestamp=None,
        received_at=T0,
        connection=0,
        backfill=False,
        raw=json.loads(data_frame("5EMqq")),
        channel="token_trades",
        side="buy",
        sol_amount=2.629842459,
        token_amount=30589322.786086,
        trader="3JQvkiF2GKfca3ggMPRwTHmzvnj6emReuSFwSrBBonp5",
        price_sol=2.629842459 / 30589322.786086,
        market_cap_sol=90.37915991907988,
        venue="curve",  # "pool": "pump"
    )


def test_captured_migrate_becomes_a_migration_whatever_its_pool() -> None:
    e = only_event(feed(dialect(), data_frame("52MoT")))
    assert (e.kind, e.provider, e.channel, e.mint, e.signature) == (
        "migration",
        "pumpportal",
        "migrations",
        "BzqYzBGydDrwjnYVtWfupr8GFoSxpCQdTkjRppBKpump",
        "52MoTgakx7Jdup1kTpZncNy99YmHLxTNEoS4FeZE8fQ3SKtHgWhsS9iYhvW5pKPDhMKkGAjvBGkzEqdETWN15inJ",
    )
    assert (e.slot, e.timestamp, e.raw["pool"]) == (None, None, "pump-amm")


@pytest.mark.parametrize(
    "quote", ["So11111111111111111111111111111111111111112", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"]
)
def test_a_create_of_a_quote_mint_is_malformed_and_never_delivered(quote: str) -> None:
    # Built from the first capture with the mint replaced, as in the published USDC case.
    frame = json.loads(data_frame("3ShNE")) | {"mint": quote}
    assert feed(dialect(), frame) == [Malformed("invalid_fields")]


def test_integers_and_floats_alike_and_missing_metadata() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]})])
    trade = {"signature": "s1", "mint": MINT_A, "traderPublicKey": WALLET, "txType": "sell", "pool": "pump"}
    e = only_event(feed(d, {**trade, "solAmount": 2, "tokenAmount": 1000000}))
    assert (e.side, e.sol_amount, e.token_amount) == ("sell", 2.0, 1000000.0)
    assert type(e.sol_amount) is float and type(e.token_amount) is float
    e = only_event(feed(d, {**trade, "solAmount": 2.0, "tokenAmount": 1e6}))
    assert (e.sol_amount, e.token_amount, e.price_sol) == (2.0, 1e6, 2e-6)
    create = {"signature": "s2", "mint": MINT_B, "traderPublicKey": WALLET, "txType": "create", "pool": "pump"}
    e = only_event(feed(d := dialect(), create))
    assert (e.name, e.symbol, e.uri, e.market_cap_sol, e.price_sol) == (None, None, None, None, None)
    assert (e.initial_buy_tokens, e.initial_buy_sol, e.virtual_sol_reserves, e.virtual_token_reserves) == (None,) * 4
    e = only_event(feed(d, {k: v for k, v in create.items() if k != "pool"}))
    assert (e.kind, e.pool) == ("new_token", "pump")  # frames from before the field were all pump.fun's
    e = only_event(
        feed(d, {**create, "initialBuy": 5, "solAmount": 1, "vSolInBondingCurve": 31, "vTokensInBondingCurve": 1e9})
    )
    assert (e.initial_buy_tokens, e.initial_buy_sol, e.virtual_sol_reserves, e.virtual_token_reserves) == (
        5.0,
        1.0,
        31.0,
        1e9,
    )
    assert all(type(v) is float for v in (e.initial_buy_tokens, e.initial_buy_sol, e.virtual_sol_reserves))
    assert feed(d, {**create, "pool": ["pump"]}) == [Dropped("other_pool")]  # a non-string pool is no known pool


def test_every_captured_event_round_trips_through_to_dict() -> None:
    d = dialect(
        [
            Subscription("new_tokens", {"pools": ["pump", "bonk"]}),
            Subscription("migrations"),
            Subscription("token_trades", {"keys": [MINT_C]}),
        ]
    )
    events = [only_event(feed(d, line)) for line in captured_lines() if '"txType"' in line]
    assert [e.kind for e in events] == ["new_token", "new_token", "new_token", "trade", "migration"]
    for e in events:
        assert Event.from_dict(json.loads(json.dumps(e.to_dict()))) == e
    assert events[3].to_dict()["market_cap_sol"] == 90.37915991907988


def test_frames_without_identity_are_unknown_and_unknown_types_too() -> None:
    out = feed(dialect(), {"txType": "create", "signature": "s"})
    assert Malformed("invalid_fields") in out and only_event(out).kind == "unknown"
    out = feed(dialect(), {"txType": "airdrop", "mint": MINT_A})
    assert Malformed("unknown_type") in out and only_event(out).raw == {"txType": "airdrop", "mint": MINT_A}
    assert feed(dialect(), b"[1]".decode()) == [Malformed("not_object")]
    assert dialect().receive(b"\xff", T0) == [Malformed("invalid_utf8")]


def test_trades_name_their_channel_by_mint_then_by_wallet() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]}), Subscription("account_trades", {"keys": [WALLET]})])
    base = {"signature": "s", "txType": "buy", "solAmount": 1, "tokenAmount": 10}
    assert only_event(feed(d, {**base, "mint": MINT_A, "traderPublicKey": "x"})).channel == "token_trades"
    assert only_event(feed(d, {**base, "mint": MINT_C, "traderPublicKey": WALLET})).channel == "account_trades"
    assert feed(dialect(), {**base, "mint": MINT_A}) == [Dropped("unsubscribed")]


# ---------------------------------------------------------------- subscriptions at runtime


def test_subscribe_sends_only_the_added_keys_and_a_smaller_list_removes() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]})])
    d.on_open()
    assert sent(
        d.subscribe(merge(d.subscriptions["token_trades"], Subscription("token_trades", {"keys": [MINT_B]})))
    ) == [{"method": "subscribeTokenTrade", "keys": [MINT_B]}]
    assert d.subscriptions["token_trades"].filters == {"keys": [MINT_A, MINT_B]}
    assert sent(d.subscribe(Subscription("token_trades", {"keys": [MINT_B, MINT_C]}))) == [
        {"method": "unsubscribeTokenTrade", "keys": [MINT_A]},
        {"method": "subscribeTokenTrade", "keys": [MINT_C]},
    ]
    assert sent(d.subscribe(Subscription("token_trades", {"keys": [MINT_B, MINT_C]}))) == []
    assert sent(d.unsubscribe("token_trades")) == [{"method": "unsubscribeTokenTrade", "keys": [MINT_B, MINT_C]}]
    assert d.unsubscribe("token_trades") == []


def test_free_channels_subscribe_once_and_migrations_unsubscribe_locally() -> None:
    d = dialect()
    d.on_open()
    assert feed(d, {"message": ACK_MIGRATIONS}) == [Subscribed("migrations")]
    assert d.subscribe(Subscription("new_tokens", {"pools": ["pump", "bonk"]})) == []  # a local filter
    assert only_event(feed(d, data_frame("2smh7"))).raw["pool"] == "bonk"
    assert sent(d.unsubscribe("new_tokens")) == [{"method": "unsubscribeNewToken"}]
    assert feed(d, data_frame("3ShNE")) == [Dropped("unsubscribed")]
    assert d.unsubscribe("migrations") == []  # the API has no unsubscribeMigration
    assert feed(d, data_frame("52MoT")) == [Dropped("unsubscribed")]
    assert sent(d.subscribe(Subscription("migrations"))) == [{"method": "subscribeMigration"}]
    assert feed(d, {"message": ACK_MIGRATIONS}) == [Subscribed("migrations")]  # acknowledged anew


def test_key_lists_are_split_at_5000_per_message() -> None:
    keys = many_keys(12_001)
    d = dialect([Subscription("account_trades", {"keys": keys})])
    frames = sent(d.on_open())
    assert [len(f["keys"]) for f in frames] == [5000, 5000, 2001]
    assert [k for f in frames for k in f["keys"]] == keys
    assert {f["method"] for f in frames} == {"subscribeAccountTrade"}
    # Three acks, one Subscribed.
    assert [feed(d, {"message": ACK_KEYS}) for _ in range(3)] == [[Subscribed("account_trades")], [], []]


def test_subscription_messages_are_paced_on_the_received_at_clock() -> None:
    """At most MESSAGES_PER_WINDOW per window of 1 s on the received_at clock: under 200 per real second."""
    d = dialect([])
    d.on_open()
    frames: list[str] = []
    for i in range(250):
        frames += d.subscribe(Subscription("token_trades", {"keys": many_keys(i + 1)}))
    assert len(frames) == MESSAGES_PER_WINDOW
    create = data_frame("3ShNE")
    assert [o for o in feed(d, create, T0) if isinstance(o, Reply)] == []  # the first frame starts the clock
    assert [o for o in feed(d, create, T0 + 999) if isinstance(o, Reply)] == []
    released = [o.text for o in feed(d, create, T0 + 1000) if isinstance(o, Reply)]
    assert len(released) == MESSAGES_PER_WINDOW
    assert d.subscribe(Subscription("token_trades", {"keys": many_keys(252)})) == []  # queued behind the rest
    released += [o.text for o in feed(d, create, T0 + 2500) if isinstance(o, Reply)]
    assert len(released) == 250 - MESSAGES_PER_WINDOW + 1
    # In order: each message adds the next key; the last, the two keys new to the registry.
    keys = many_keys(252)
    assert [json.loads(t)["keys"] for t in frames + released] == [[k] for k in keys[:250]] + [keys[250:]]


def test_the_pacing_budget_counts_messages_sent_since_opening() -> None:
    d = dialect([Subscription("token_trades", {"keys": many_keys(5000 * 100)})])
    assert len(d.on_open()) == MESSAGES_PER_WINDOW
    replies = [o for o in feed(d, {"message": ACK_KEYS}, T0 + 1000) if isinstance(o, Reply)]
    assert replies == []  # the first received_at starts the clock of the window that began at the opening
    replies = [o for o in feed(d, {"message": ACK_KEYS}, T0 + 2000) if isinstance(o, Reply)]
    assert len(replies) == 5


# ---------------------------------------------------------------- the registry's view: merge, remove, filters


def test_merge_adds_keys_and_remove_takes_them_away() -> None:
    old = Subscription("token_trades", {"keys": [MINT_A, MINT_B]})
    assert merge(old, Subscription("token_trades", {"keys": [MINT_B, MINT_C]})).filters == {
        "keys": [MINT_A, MINT_B, MINT_C]
    }
    assert merge(None, Subscription("token_trades", {"keys": [MINT_A, MINT_A]})).filters == {"keys": [MINT_A]}
    assert merge(Subscription("new_tokens", {"pools": ["bonk"]}), Subscription("new_tokens")).filters == {}
    assert remove(old, {"keys": [MINT_A]}) == Subscription("token_trades", {"keys": [MINT_B]})
    assert remove(old, {"keys": [MINT_A, MINT_B]}) is None
    assert remove(old, None) is None and remove(Subscription("migrations"), {}) is None
    with pytest.raises(ConfigurationError, match="as a whole"):
        remove(Subscription("new_tokens"), {"pools": ["pump"]})


@pytest.mark.parametrize(
    ("channel", "filters", "message"),
    [
        ("token_trades", {}, "non-empty 'keys' list"),
        ("token_trades", {"keys": []}, "non-empty 'keys' list"),
        ("account_trades", {"keys": "WALLET"}, "list of strings"),
        ("token_trades", {"keys": ["not base58!"]}, "not a base58 address"),
        ("token_trades", {"mints": [MINT_A]}, "takes only keys"),
        ("migrations", {"pools": ["pump"]}, "takes no filters"),
        ("new_tokens", {"pools": [1]}, "list of strings"),
    ],
)
def test_bad_filters_are_configuration_errors(channel: str, filters: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_filters(channel, filters)


# ---------------------------------------------------------------- the paywall seen from outside


def test_a_silent_trade_channel_is_reported_once_while_launches_flow() -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})], silent_trades_after=60)
    d.on_open()
    feed(d, {"message": ACK_KEYS}, T0)
    create = data_frame("3ShNE")
    notices = [o for i in range(10) for o in feed(d, create, T0 + i * 1000) if isinstance(o, Notice)]
    assert notices == []  # launches flow, but not for long enough
    assert [o for o in feed(d, create, T0 + 61_000) if isinstance(o, Notice)] == [
        Notice(
            "trade_channel_silent",
            "token_trades was acknowledged 61 s ago and has delivered nothing while 11 launches arrived: "
            "PumpPortal sends no trades for an unfunded API key",
        )
    ]
    assert [o for o in feed(d, create, T0 + 120_000) if isinstance(o, Notice)] == []  # once


def test_a_trade_channel_that_delivers_is_not_reported_nor_one_without_launches() -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})], silent_trades_after=60)
    d.on_open()
    feed(d, {"message": ACK_KEYS}, T0)
    trade = {"signature": "s", "mint": MINT_A, "txType": "buy", "solAmount": 1, "tokenAmount": 10}
    only_event(feed(d, trade, T0 + 1000))
    create = data_frame("3ShNE")
    assert [o for i in range(70) for o in feed(d, create, T0 + i * 1000) if isinstance(o, Notice)] == []
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})], silent_trades_after=60)
    d.on_open()
    feed(d, {"message": ACK_KEYS}, T0)
    assert [o for o in feed(d, create, T0 + 100_000) if isinstance(o, Notice)] == []  # one launch is no flow
