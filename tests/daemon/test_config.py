"""Settings: TOML file, PUMPSYNC_* environment and flags (flags > env > file > defaults), and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from daemonhelpers import EXAMPLE_CONFIG, FAST_FLAGS, clean_env

from pumpsync.cli import cli
from pumpsync.daemon.config import DaemonConfig, build_config, load_file, resolve_key
from pumpsync.errors import ConfigurationError
from pumpsync.simulator import Simulator

CONFIG = """
provider = "anaxer"
connections = 2
metrics_addr = "127.0.0.1:9200"
drain_timeout = 7
ping_interval = 12.5
log_level = "warning"

[channels]
creations = {}
trades = { minSol = 1 }

[[sinks]]
type = "sqlite"
path = "/tmp/x.sqlite3"
"""


def check(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    env = {"PUMPSYNC_API_KEY": "k", **(env or {})}  # --check fails without a key
    result = CliRunner().invoke(cli, ["daemon", *args, "--check"], env=clean_env(**env))
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    path = tmp_path / "pumpsync.toml"
    path.write_text(CONFIG)
    defaults = check([])
    assert defaults["client"] == {"provider": "openpump"}
    assert defaults["metrics_addr"] == "127.0.0.1:9108" and defaults["sinks"] == [{"type": "stdout"}]
    from_file = check(["--config", str(path)])
    assert from_file["client"]["connections"] == 2 and from_file["client"]["ping_interval"] == 12.5
    assert from_file["client"]["channels"] == {"creations": {}, "trades": {"minSol": 1}}
    assert from_file["drain_timeout"] == 7.0 and from_file["log_level"] == "warning"
    assert from_file["sinks"] == [{"type": "sqlite", "path": "/tmp/x.sqlite3"}]
    env = {"PUMPSYNC_CONNECTIONS": "3", "PUMPSYNC_METRICS_ADDR": "127.0.0.1:9300", "PUMPSYNC_SINKS": "stdout"}
    from_env = check(["--config", str(path)], env)
    assert from_env["client"]["connections"] == 3 and from_env["metrics_addr"] == "127.0.0.1:9300"
    assert from_env["sinks"] == [{"type": "stdout"}]
    assert from_env["client"]["ping_interval"] == 12.5  # not overridden: the file's value stays
    flags = ["--config", str(path), "--connections", "4", "--metrics-addr", "off", "--channel", "graduations", "-vv"]
    from_flags = check(flags, {**env, "PUMPSYNC_CONFIG": "/nonexistent"})
    assert from_flags["client"]["connections"] == 4 and from_flags["metrics_addr"] == "off"
    assert from_flags["client"]["channels"] == {"graduations": {}} and from_flags["log_level"] == "debug"


def test_the_config_file_comes_from_the_environment_too(tmp_path: Path) -> None:
    path = tmp_path / "pumpsync.toml"
    path.write_text(CONFIG)
    assert check([], {"PUMPSYNC_CONFIG": str(path)})["client"]["provider"] == "anaxer"


def test_the_shipped_example_config_is_valid() -> None:
    data = check(["--config", str(EXAMPLE_CONFIG)])
    assert data["client"]["provider"] == "anaxer"
    assert data["sinks"][0] == {"type": "sqlite", "path": "/var/lib/pumpsync/events.sqlite3"}


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("api_key = 'abc'", "api_key"),
        ("colour = 'red'", "colour"),
        ("drain_timeout = 'soon'", "drain_timeout"),
        ("provider = ", "config"),
        ("sinks = ['stdout']", "sinks[0]"),
    ],
)
def test_bad_files_are_refused_naming_the_key(tmp_path: Path, text: str, option: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigurationError) as info:
        load_file(path)
    assert info.value.option == option


def test_bad_values_fail_the_command_with_exit_2(tmp_path: Path) -> None:
    for args in (["--connections", "0"], ["--sink", "kafka:x"], ["--log-level", "loud"], ["--channel", "nope"]):
        result = CliRunner().invoke(cli, ["daemon", "--provider", "anaxer", *args, "--check"], env=clean_env())
        assert result.exit_code == 2, (args, result.output)
    with pytest.raises(ConfigurationError):
        build_config({}, {"drain_timeout": -1.0})


def test_key_precedence(tmp_path: Path) -> None:
    key_file, cred_dir, file_key = tmp_path / "flag-key", tmp_path / "creds", tmp_path / "file-key"
    key_file.write_text("from-flag-file\n")
    file_key.write_text("from-config-file\n")
    cred_dir.mkdir()
    (cred_dir / "api_key").write_text("from-credential\n")
    config = DaemonConfig(api_key_file=str(file_key))
    env = {"PUMPSYNC_API_KEY": "from-env", "CREDENTIALS_DIRECTORY": str(cred_dir)}
    assert resolve_key(config, "from-flag", str(key_file), env).reveal() == "from-flag"
    assert resolve_key(config, None, str(key_file), env).reveal() == "from-flag-file"
    assert resolve_key(config, None, None, env).reveal() == "from-env"
    assert resolve_key(config, None, None, {"CREDENTIALS_DIRECTORY": str(cred_dir)}).reveal() == "from-credential"
    assert resolve_key(config, None, None, {}).reveal() == "from-config-file"
    assert resolve_key(DaemonConfig(demo=True), None, None, {}).reveal() == "pumpsync-demo-key"
    with pytest.raises(ConfigurationError):
        resolve_key(DaemonConfig(), None, None, {})


def test_an_api_key_file_flag_beats_the_environment_key(start_daemon: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("the-right-key\n")
    with Simulator(providers=("openpump",), rate=0, keys={"the-right-key": "pro"}) as sim:
        daemon = start_daemon(
            ["--provider", "openpump", "--url", sim.url("openpump"), "--api-key-file", str(key_file), *FAST_FLAGS],
            env=clean_env(PUMPSYNC_API_KEY="the-wrong-key"),
        )
        daemon.wait_ready()  # this simulator accepts only the right key
        assert daemon.stop() == 0


def test_check_shows_urls_without_passwords_or_keys(tmp_path: Path) -> None:
    """--check prints the client's and the sinks' URLs as scheme, host and port: a Redis password
    (userinfo or query), a key in a webhook's URL and its header values never show."""
    secret = "s3cret-redis-pw"
    path = tmp_path / "pumpsync.toml"
    path.write_text(
        f'[[sinks]]\ntype = "webhook"\nurl = "https://hooks.example/in?token={secret}"\n'
        f'headers = {{ Authorization = "Bearer {secret}" }}\n'
        f'[[sinks]]\ntype = "redis"\nurl = "redis://:{secret}@cache.internal:6380/0?stream=pumpsync:events"\n'
        f'[[sinks]]\ntype = "redis"\nurl = "redis://cache.internal:6381/0?password={secret}"\n'
    )
    url = f"redis://bot:{secret}@cache.internal:6379/0?stream=pumpsync:events"
    shown = check(["--config", str(path), "--provider", "redis", "--url", url])
    flags = check(["--provider", "redis", "--sink", f"redis://:{secret}@cache.internal:6380/0?maxlen=1000"])
    assert secret not in json.dumps(flags) and flags["sinks"][0]["url"] == "redis://cache.internal:6380"
    assert secret not in json.dumps(shown)
    assert shown["client"]["url"] == "redis://cache.internal:6379"
    urls = [sink.get("url") for sink in shown["sinks"]]
    assert urls == ["https://hooks.example", "redis://cache.internal:6380", "redis://cache.internal:6381"]
    assert shown["sinks"][0]["headers"] == {"Authorization": "***"}


def test_the_help_lists_the_redis_sink() -> None:
    result = CliRunner().invoke(cli, ["daemon", "--help"], env=clean_env())
    assert result.exit_code == 0 and "redis://HOST:PORT/DB" in result.output
