"""Issue 22.15: hostile ``[[sources]]`` values. Every one is a one-line error naming the option
and the value, exit 2, the same at ``--check`` and at start (never a traceback, never a value
that passes ``--check`` and fails once running)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from daemonhelpers import clean_env

from pumpsync.cli import cli

ENV = {"PUMPSYNC_ANAXER_API_KEY": "k1", "PUMPSYNC_OPENPUMP_API_KEY": "k2"}
OTHER = '[[sources]]\nprovider = "openpump"\n'

# (the first [[sources]] table's body, what the error must name: the option, and the value where it has one)
HOSTILE = [
    ('provider = "nosuch"', ("provider", "nosuch")),
    ('provider = ""', ("provider",)),
    ("provider = 5", ("provider", "5")),
    ('provider = ["anaxer"]', ("provider",)),
    ('provider = "anax\\u0000er"', ("provider",)),
    ('provider = "anaxer"\nconnections = "2"', ("connections", "'2'")),
    ('provider = "anaxer"\nconnections = -1', ("connections", "-1")),
    ('provider = "anaxer"\nconnections = 1_000_000_000', ("connections", "1000000000")),
    ('provider = "anaxer"\nqueue_size = 5', ("queue_size",)),
    ('provider = "anaxer"\nping_interval = -3.5', ("ping_interval", "-3.5")),
    ('provider = "anaxer"\nping_interval = nan', ("ping_interval", "nan")),
    ('provider = "anaxer"\nping_interval = 1e308', ("ping_interval",)),
    ('provider = "anaxer"\nurl = ""', ("url",)),
    ('provider = "anaxer"\nurl = 5', ("url", "5")),
    ('provider = "anaxer"\nurl = "http://127.0.0.1:1/"', ("url",)),
    ('provider = "anaxer"\nurl = ["ws://127.0.0.1:1/", 3]', ("url",)),
    ('provider = "anaxer"\nurl = "ws://127.0.0.1:1/\\u0000"', ("url",)),
    ('provider = "anaxer"\nname = 5', ("name", "5")),
    ('provider = "anaxer"\nname = ""', ("name",)),
    ('provider = "anaxer"\nname = ["a"]', ("name",)),
    ('provider = "anaxer"\nname = "openpump"', ("name", "openpump")),  # the other source's label
    ('provider = "anaxer"\nchannels = 5', ("channels", "5")),
    ('provider = "anaxer"\nchannels = ["nosuch"]', ("channels", "nosuch")),
    ('provider = "anaxer"\nchannels = { trades = 5 }', ("channels",)),
    ('provider = "anaxer"\nsince = "yesterday"', ("since", "yesterday")),
    ('provider = "anaxer"\nsince = -5', ("since", "-5")),
    ('provider = "anaxer"\nbackfill = "no"', ("backfill", "no")),
    ('provider = "anaxer"\napi_key_file = 5', ("api_key_file", "5")),
    ('provider = "anaxer"\napi_key_file = "/nonexistent/key"', ("api_key_file", "/nonexistent/key")),
    ('provider = "anaxer"\napi_key = "x"', ("api_key",)),
    ('provider = "anaxer"\nconection = 2', ("conection", "connections")),  # did you mean
    ('provider = "anaxer"\nqueue_size = 2000', ("queue_size",)),  # the client's, not a source's
    ("connections = 2", ("provider",)),  # missing
    ('provider = "anaxer"\nrest_url = 5', ("rest_url", "5")),
    ('provider = "anaxer"\nauth = 5', ("auth", "5")),
    ('provider = "anaxer"\nauth = "nosuch"', ("auth", "nosuch")),
    ('provider = "anaxer"\nmax_retries = -1', ("max_retries", "-1")),
    ('provider = "anaxer"\nconnect_timeout = 0', ("connect_timeout", "0")),
]


@pytest.mark.parametrize(("body", "named"), HOSTILE, ids=[body.replace("\n", "; ") for body, _ in HOSTILE])
def test_a_hostile_source_value_is_one_line_naming_option_and_value(
    tmp_path: Path, body: str, named: tuple[str, ...]
) -> None:
    config = tmp_path / "pumpsync.toml"
    config.write_text(f"[[sources]]\n{body}\n{OTHER}", encoding="utf-8")
    outputs = []
    for extra in (["--check"], []):
        args = ["daemon", "--config", str(config), "--metrics-addr", "off", "--state-dir", str(tmp_path / "s"), *extra]
        result = CliRunner().invoke(cli, args, env=clean_env(**ENV))
        assert result.exit_code == 2, (body, extra, result.output, result.exception)
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(lines) == 1, result.output
        for word in named:  # the CLI spells options as flags: queue_size as queue-size
            assert word in lines[0] or word.replace("_", "-") in lines[0], (body, lines[0])
        outputs.append(lines[0])
    assert outputs[0] == outputs[1]  # the same at --check and at start


def test_duplicate_source_names_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "pumpsync.toml"
    config.write_text('[[sources]]\nprovider = "anaxer"\nname = "a"\n[[sources]]\nprovider = "openpump"\nname = "a"\n')
    result = CliRunner().invoke(cli, ["daemon", "--config", str(config), "--check"], env=clean_env(**ENV))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "name" in result.output and "'a'" in result.output
