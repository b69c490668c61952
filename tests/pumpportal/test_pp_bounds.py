"""PumpPortal's edges (issue 22, item 13): refusals matched robustly, unsubscribed trades filtered,
invalid mints and amounts refused, every channel refused ends the stream, one socket per host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from pphelpers import MINT_A, MINT_B, WALLET, PPSim, pp_url

import pumpsync
from pumpsync import Client
from pumpsync._secrets import ApiKey
from pumpsync.errors import ConfigurationError, PlanError, SubscriptionRejected
from pumpsync.events import Event
from pumpsync.providers._pumpportal_wire import ACK_KEYS, UNFUNDED
from pumpsync.providers.base import Dropped, Fatal, Malformed, Notice, Output, Rejected, Subscribed, Subscription
from pumpsync.providers.pumpportal import PumpPortal
from pumpsync.simulator.plans import UNFUNDED_KEY

T0 = 1_764_000_000_000
SIG = "5uEezmZnrgk3a1g92qQ3CmbkjtE7j5xV2rbFy43Lt8WeT1MPRjqNLK7g9hzQHZv6kxxLeyujDdX6K69A9LhVpnNa"
DEFAULT = [Subscription("new_tokens"), Subscription("migrations")]


def dialect(subs: list[Subscription]) -> PumpPortal:
    d = PumpPortal(0, subs)
    d.handshake(PumpPortal.default_url, ApiKey("pp-secret-key-123"), "query")
    d.on_open()
    return d


def feed(d: PumpPortal, frame: dict[str, Any]) -> list[Output]:
    return d.receive(json.dumps(frame).encode(), T0)


# ---------------------------------------------------------------- control texts


@pytest.mark.parametrize(
    "text",
    [
        UNFUNDED,
        UNFUNDED.replace("API key", "api key"),  # one character's case
        UNFUNDED.replace("0.02 SOL", "0.03 SOL"),  # another price
        UNFUNDED.replace(".", "!"),
        UNFUNDED.replace("funded", "fundd"),  # a typo: the method names still say it
        "Trade subscriptions require a funded API key",  # reworded
        "'subscribeTokenTrade' is only available to funded keys",
    ],
)
def test_a_refusal_text_one_character_off_is_still_a_refusal(text: str) -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})])
    assert feed(d, {"message": ACK_KEYS}) == [Subscribed("token_trades")]
    (out,) = feed(d, {"message": text})
    assert isinstance(out, Rejected) and out.error.code == "unfunded_key" and out.error.channel == "token_trades"


@pytest.mark.parametrize(
    "text", ["Successfully subscribd to keys.", "Slow down: you need to wait", "Your API key is valid", "Hello"]
)
def test_an_unrecognised_text_is_counted_and_acknowledges_nothing(text: str) -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})])
    (out,) = feed(d, {"message": text})  # not an ack (one character off), not a refusal
    assert isinstance(out, Notice) and out.code == "unrecognised_message"
    assert feed(d, {"message": "Successfully subscribed to keys!"}) == [Subscribed("token_trades")]  # punctuation


def test_every_channel_refused_ends_the_stream_with_a_plan_error() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]}), Subscription("account_trades", {"keys": [WALLET]})])
    out = feed(d, {"message": UNFUNDED})
    assert [type(o) for o in out] == [Rejected, Rejected, Fatal]
    fatal = out[-1]
    assert isinstance(fatal, Fatal) and isinstance(fatal.error, PlanError)
    assert "0.02 SOL" in str(fatal.error) and "pp-secret-key-123" not in str(fatal.error)
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})])
    assert [type(o) for o in feed(d, {"message": UNFUNDED})] == [Rejected]  # launches still flow


# ---------------------------------------------------------------- data frames


def test_trades_of_keys_never_subscribed_are_dropped_as_unsubscribed() -> None:
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]}), Subscription("account_trades", {"keys": [WALLET]})])
    trade = {"txType": "buy", "signature": SIG, "solAmount": 1, "tokenAmount": 10}
    other_wallet = "5ygJ27k1ZyUBdeR9LeNxQ5vZ4n4togt3kxxcYnHUpump"
    assert feed(d, {**trade, "mint": MINT_B, "traderPublicKey": other_wallet}) == [Dropped("unsubscribed")]
    d = dialect([Subscription("token_trades", {"keys": [MINT_A]})])
    assert feed(d, {**trade, "mint": MINT_B, "traderPublicKey": WALLET}) == [Dropped("unsubscribed")]
    (event,) = feed(d, {**trade, "mint": MINT_A, "traderPublicKey": WALLET})
    assert isinstance(event, Event) and event.channel == "token_trades"


@pytest.mark.parametrize(
    "change",
    [
        {"mint": "not-an-address"},
        {"mint": "1" * 44},  # base58, but not 32 bytes
        {"mint": MINT_A + "1"},
        {"solAmount": -1},
        {"tokenAmount": -0.5},
        {"marketCapSol": -30.0},
        {"solAmount": 10**400},
    ],
)
def test_mints_that_are_not_addresses_and_negative_amounts_are_invalid(change: dict[str, Any]) -> None:
    d = dialect([*DEFAULT, Subscription("token_trades", {"keys": [MINT_A]})])
    trade = {"txType": "buy", "signature": SIG, "mint": MINT_A, "solAmount": 1, "tokenAmount": 10, **change}
    out = feed(d, trade)
    assert Malformed("invalid_fields") in out and [e.kind for e in out if isinstance(e, Event)] == ["unknown"]
    create = {"txType": "create", "signature": SIG, "mint": MINT_A, "initialBuy": 5, **change}
    if "tokenAmount" in create:  # a create carries no tokenAmount: its first buy is initialBuy
        create["initialBuy"] = create.pop("tokenAmount")
    out = feed(d, create)
    assert Malformed("invalid_fields") in out and all(e.kind == "unknown" for e in out if isinstance(e, Event))


# ---------------------------------------------------------------- end to end


def test_an_unfunded_key_with_only_trade_channels_ends_with_the_error(
    pp_sim: PPSim, make_client: Callable[..., Client]
) -> None:
    """Before: the stream idled until its duration ended and exited 0."""
    sim = pp_sim()
    client = make_client("pumpportal", pp_url(sim), api_key=UNFUNDED_KEY, channels={"token_trades": {"keys": [MINT_A]}})
    client.start()
    with pytest.raises(SubscriptionRejected):
        client.get(timeout=10)
    with pytest.raises(PlanError) as ended:
        client.get(timeout=10)
    assert ended.value.error_code == "unfunded_key" and UNFUNDED_KEY not in str(ended.value)
    assert isinstance(client.error, PlanError)


def test_the_stream_command_exits_non_zero_with_one_line(pp_sim: PPSim) -> None:
    sim = pp_sim()
    env = {**os.environ, "PUMPSYNC_API_KEY": UNFUNDED_KEY}
    run = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--provider", "pumpportal", "--url", pp_url(sim), "--channel",
         "token_trades:" + json.dumps({"keys": [MINT_A]}), "--duration", "60"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert run.returncode != 0, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert errors and "Traceback" not in run.stderr and UNFUNDED_KEY not in run.stderr + run.stdout
    assert "0.02 SOL" in errors[-1]


def test_two_pumpportal_sources_on_one_host_are_refused() -> None:
    """Two sockets to one host is the operator's ban trigger: refused at configuration."""
    url = "ws://127.0.0.1:9/api/data"
    with pytest.raises(ConfigurationError, match=r"two connections to 127\.0\.0\.1"):
        Client(
            sources=[
                pumpsync.Source("pumpportal", url=url),
                pumpsync.Source("pumpportal", url=url, channels={"token_trades": {"keys": [MINT_A]}}),
            ]
        )
    Client(sources=[pumpsync.Source("pumpportal", url=url), pumpsync.Source("pumpportal", url="ws://localhost:9/x")])
