"""Help a user can read (issue 28): `--provider` compact and once, every option explained,
provider-only options say whose they are, `--commitment` a choice, every provider named."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pumpsync.cli import cli
from pumpsync.providers import PROVIDERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("stream", "top", "daemon", "demo", "simulate")


def _command(name: str) -> click.Command:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    return command


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_and_no_none_default_is_shown(name: str) -> None:
    for param in _command(name).params:
        if isinstance(param, click.Option):
            assert param.help, f"pumpsync {name} {param.opts[0]} has no help"
            assert "[None]" not in param.help


def test_provider_help_is_compact_and_the_summaries_are_in_the_root_help_once() -> None:
    provider = next(p for p in _command("stream").params if p.name == "provider")
    assert isinstance(provider, click.Option) and provider.help is not None
    assert len(provider.help) < 200 and all(name in provider.help for name in PROVIDERS)
    root = CliRunner().invoke(cli, ["--help"]).output
    for spec in PROVIDERS.values():
        assert root.count(spec.summary[:40]) == 1


def test_channel_help_lists_every_channel_and_provider_options_say_whose() -> None:
    params = {p.name: p for p in _command("stream").params if isinstance(p, click.Option)}
    channel_help = params["channels"].help or ""
    for spec in PROVIDERS.values():
        for channel in spec.channels:
            assert channel in channel_help
    for option, spec in ((f.name, s) for s in PROVIDERS.values() for f in dataclasses.fields(s.options_class)):
        takers = (params[option].help or "").split(" only: ")[0].split("/")  # an option several providers take
        assert spec.name in takers
    commitment = params["commitment"].type
    assert isinstance(commitment, click.Choice) and set(commitment.choices) == {"processed", "confirmed", "finalized"}
    result = CliRunner().invoke(cli, ["stream", "--provider", "solana", "--commitment", "confirm"])
    assert result.exit_code == 2 and "'confirm' is not one of" in result.output


def test_the_package_description_and_the_contrib_config_name_every_provider() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    contrib = (ROOT / "contrib" / "systemd" / "pumpsync.toml").read_text()
    for name in PROVIDERS:
        description = project["description"].lower().replace("geyser grpc", "geyser")
        assert name in description.replace("solana rpc", "solana").replace(" streams", "")
        assert name in contrib
