"""One key precedence everywhere (issue 17, item 4): flags > environment > config file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pumpsync._keys import choose_api_key
from pumpsync.errors import ConfigurationError
from pumpsync.simulator import Simulator
from tests.conftest import wait_until
from tests.daemon.daemonhelpers import DaemonProc, clean_env

GOOD, BAD = "good-key-123", "bad-key-456"


def test_the_order(tmp_path: Path) -> None:
    files = {}
    for name in ("flag", "env", "credential", "config"):
        files[name] = tmp_path / name
        files[name].write_text(f"from-{name}-file\nsecond line ignored\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api_key").write_text("from-credential\n")
    env = {
        "PUMPSYNC_API_KEY": "from-env",
        "PUMPSYNC_API_KEY_FILE": str(files["env"]),
        "CREDENTIALS_DIRECTORY": str(creds),
    }

    def key(*args: object, environ: dict[str, str] | None = None, **kw: object) -> str:
        return choose_api_key(*args, environ=env if environ is None else environ, **kw).reveal()  # type: ignore[arg-type]

    config = {"config_key_file": files["config"], "fallback": "from-fallback"}
    assert key("from-flag", files["flag"], **config) == "from-flag"
    assert key(None, files["flag"], **config) == "from-flag-file"  # a key file flag beats the environment
    assert key(None, None, **config) == "from-env"
    del env["PUMPSYNC_API_KEY"]
    assert key(None, None, **config) == "from-env-file"
    del env["PUMPSYNC_API_KEY_FILE"]
    assert key(None, None, **config) == "from-credential"
    assert key(None, None, environ={}, **config) == "from-config-file"
    assert key(None, None, environ={}, fallback="from-fallback") == "from-fallback"
    with pytest.raises(ConfigurationError, match="no API key"):
        choose_api_key(environ={})


@pytest.fixture(scope="module")
def strict_sim():
    with Simulator(providers=("openpump",), port=0, rate=50, seed=2, keys={GOOD: "pro"}) as sim:
        yield sim


@pytest.fixture
def key_files(tmp_path: Path) -> dict[str, Path]:
    files = {GOOD: tmp_path / "good", BAD: tmp_path / "bad"}
    for key, path in files.items():
        path.write_text(key + "\n")
    return files


@pytest.mark.parametrize(("env_key", "file_key", "status"), [(BAD, GOOD, 0), (GOOD, BAD, 3)])
def test_stream_takes_the_key_file_flag_over_the_environment(strict_sim, key_files, env_key, file_key, status) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--url", strict_sim.url("openpump"),
         "--api-key-file", str(key_files[file_key]), "--count", "2", "--format", "jsonl"],
        capture_output=True, text=True, timeout=60, env=clean_env(PUMPSYNC_API_KEY=env_key),
    )  # fmt: skip
    assert result.returncode == status, result.stderr
    assert GOOD not in result.stderr + result.stdout and BAD not in result.stderr + result.stdout


def test_daemon_takes_the_key_file_flag_over_the_environment(strict_sim, key_files, tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    daemon = DaemonProc(
        ["--url", strict_sim.url("openpump"), "--api-key-file", str(key_files[GOOD]), "--sink", f"jsonl:{out}"],
        tmp_path,
        env=clean_env(PUMPSYNC_API_KEY=BAD),
    )
    try:
        wait_until(lambda: (out.is_file() and out.stat().st_size > 0) or not daemon.running(), 30, "events written")
        assert daemon.stop() == 0, daemon.stderr
    finally:
        daemon.kill()
