"""Filter keys: a typo is a ConfigurationError naming the key and the valid ones (issue 17, item 2)."""

from __future__ import annotations

import logging

import pytest

import pumpsync
from pumpsync._filters import check_filters
from pumpsync.cli import main
from pumpsync.errors import ConfigurationError
from pumpsync.providers import PROVIDERS
from pumpsync.providers.anaxer import FILTER_KEYS as ANAXER_FILTER_KEYS


def test_every_documented_key_is_accepted_on_every_anaxer_channel() -> None:
    for channel in ("creations", "trades", "graduations", "prices"):
        check_filters("anaxer", channel, dict.fromkeys(ANAXER_FILTER_KEYS, 1), PROVIDERS["anaxer"].filters)


def test_a_case_typo_names_the_key_suggests_the_right_one_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_filters("anaxer", "trades", {"side": "buy", "minsol": 0.5}, PROVIDERS["anaxer"].filters)
    message = str(info.value)
    assert info.value.option == "channels"
    assert "'minsol'" in message and "did you mean 'minSol'?" in message
    assert all(key in message for key in ANAXER_FILTER_KEYS)


def test_a_provider_without_channels_takes_no_filters() -> None:
    with pytest.raises(ConfigurationError, match="takes no filters"):
        check_filters("openpump", "any", {"minSol": 1}, PROVIDERS["openpump"].filters)
    check_filters("openpump", "any", {}, PROVIDERS["openpump"].filters)  # nothing given, nothing to refuse


def test_the_client_refuses_a_typo_before_connecting() -> None:
    with pytest.raises(ConfigurationError, match="unknown filter 'minsol'"):
        pumpsync.Client("anaxer", api_key="k", url="ws://127.0.0.1:9/", channels={"trades": {"minsol": 0.5}})
    client = pumpsync.Client("anaxer", api_key="k", url="ws://127.0.0.1:9/", channels={"trades": {"mints": ["M"]}})
    with pytest.raises(ConfigurationError, match="unknown filter 'wallet'"):
        client.subscribe("creations", {"wallet": ["W"]})
    client.close()


def test_the_cli_prints_one_usage_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the command sets up logging to capsys' stderr
    with pytest.raises(SystemExit) as info:
        main(["stream", "--provider", "anaxer", "--api-key", "k", "--url", "ws://127.0.0.1:9/",
              "--channel", 'trades:{"minsol":0.5}'])  # fmt: skip
    root.handlers[:], root.level = handlers, level
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--channel'" in err and "'minsol'" in err and "minSol" in err
