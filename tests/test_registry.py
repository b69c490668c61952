"""The provider registry drives the config, the client's API, the CLI and the simulator."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest

import pumpsync
from pumpsync import Client, ConfigurationError, connect
from pumpsync._secrets import safe_url
from pumpsync.config import ClientConfig, make_config
from pumpsync.errors import PumpsyncError, RequestTimeout, UsageError
from pumpsync.providers import PROVIDERS, ProviderName, openpump
from pumpsync.simulator.simulator import SERVERS
from tests.conftest import drain, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_the_provider_names_type_lists_exactly_the_registry() -> None:
    assert set(get_args(ProviderName)) == set(PROVIDERS)
    assert all(name == spec.name for name, spec in PROVIDERS.items())
    assert set(SERVERS) <= set(PROVIDERS)


def test_generic_modules_hold_no_provider_logic() -> None:
    """The issue's grep: provider names in pumpsync/*.py only in docstrings, comments and examples."""
    offenders = []
    for path in sorted((ROOT / "pumpsync").glob("*.py")):
        in_doc = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            quotes = code.count('"""')
            if quotes % 2 == 1:
                in_doc = not in_doc
                continue
            if in_doc or quotes:
                continue
            if re.search(r"(?i)anaxer|openpump", code) and not re.search(r"^\s*(\"|')", code):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_cli_provider_choices_come_from_the_registry() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    choices = re.search(r"--provider \[([^\]]+)\]", out)
    assert choices is not None and choices.group(1).split("|") == list(PROVIDERS)


def test_client_and_connect_show_their_options() -> None:
    client_params = inspect.signature(Client).parameters
    connect_params = inspect.signature(connect).parameters
    assert list(client_params) == list(connect_params)
    groups = {f.name for f in dataclasses.fields(ClientConfig)} - {"provider", "urls", "api_key"}
    assert groups <= set(client_params)
    assert client_params["timeouts"].kind is inspect.Parameter.KEYWORD_ONLY
    assert get_args(client_params["provider"].annotation) == get_args(ProviderName) or "ProviderName" in str(
        client_params["provider"].annotation
    )
    assert pumpsync.client.__all__ and pumpsync.config.__all__


def test_usage_mistakes_raise_usage_error(sim: Any, make_client: Any) -> None:
    client = make_client("anaxer", sim.url("anaxer"))
    with pytest.raises(UsageError, match="anaxer has no status request"):
        client.status()
    with pytest.raises(UsageError, match="not subscribed"):
        client.unsubscribe("prices")
    client.start()
    with pytest.raises(UsageError, match="already running"):
        client.start()
    assert issubclass(UsageError, PumpsyncError) and issubclass(RequestTimeout, TimeoutError)


def test_status_without_an_open_connection_is_a_usage_error(sim: Any, make_client: Any) -> None:
    client = make_client("openpump", sim.url("openpump"))
    with pytest.raises(UsageError, match="no open connection"):
        client.status()


def test_client_does_not_expose_the_connections_callbacks() -> None:
    for name in ("session_opened", "session_ended", "control"):
        assert not hasattr(Client, name)


def test_a_url_list_opens_one_connection_per_url_and_delivers_each_event_once(sim: Any, make_client: Any) -> None:
    url = sim.url("openpump")
    client = make_client("openpump", [url, url.replace("127.0.0.1", "localhost")]).start()
    assert client.config.connections == 2 and client.config.url_of(1) != client.config.url_of(0)
    wait_until(lambda: len(sim.connections("openpump")) == 2, what="two connections")
    published = len(sim.history("openpump"))
    sim.emit(20, "trade")
    n = len(sim.history("openpump")) - published  # a trade may bring a follower (a graduation)
    events = drain(client, n)
    assert len({e.identity for e in events}) == n
    wait_until(lambda: client.stats()["duplicates"] == n, what="every second copy suppressed")
    assert client.queue.qsize() == 0


def test_a_key_in_a_url_path_or_query_is_never_shown() -> None:
    assert safe_url("wss://rpc.example/SECRETKEY/?api-key=OTHER") == "wss://rpc.example"
    assert safe_url("ws://127.0.0.1:8080/v1/stream?key=x") == "ws://127.0.0.1:8080"
    config = make_config("openpump", api_key="k", url=["wss://a.example/PATHKEY1/", "wss://b.example/x?api_key=Q2"])
    shown = repr(config)
    assert "PATHKEY1" not in shown and "Q2" not in shown and "wss://a.example" in shown
    with pytest.raises(ConfigurationError) as caught:
        make_config("openpump", api_key="k", url="http://a.example/PATHKEY1")
    assert "PATHKEY1" not in str(caught.value)


@pytest.fixture
def extra_provider(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A test-only registry entry: a free OpenPump-like source, one connection at most."""

    def check(config: ClientConfig) -> None:
        if config.options.burst > 5:  # type: ignore[attr-defined]
            raise ConfigurationError("burst", "at most 5 for this provider")

    spec = dataclasses.replace(
        openpump.SPEC,
        name="freebie",
        key_required=False,
        auth_forms=("none", "query"),
        default_auth="none",
        max_connections=1,
        max_connections_reason="the operator bans clients with more",
        options={"burst": 3.0},
        max_frame_size=4 * 1024 * 1024,
        check=check,
    )
    monkeypatch.setitem(PROVIDERS, "freebie", spec)
    monkeypatch.delenv("PUMPSYNC_API_KEY", raising=False)
    return spec


def test_a_spec_drives_key_options_limits_and_checks(extra_provider: Any) -> None:
    config = make_config("freebie")
    assert config.api_key is None and config.auth == "none"
    assert config.options.burst == 3.0 and config.max_frame_size == 4 * 1024 * 1024  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="operator bans clients with more"):
        make_config("freebie", connections=2)
    with pytest.raises(ConfigurationError, match="openpump does not take this option"):
        make_config("openpump", api_key="k", burst=1.0)
    with pytest.raises(ConfigurationError, match="at most 5"):
        make_config("freebie", burst=6.0)
    with pytest.raises(ConfigurationError, match="auth"):
        make_config("freebie", auth="header")


def test_ws_ping_heartbeat_sends_ping_frames_and_measures_the_round_trip(
    sim: Any, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider whose servers have no application ping (JSON-RPC nodes) asks for WebSocket pings."""
    monkeypatch.setitem(PROVIDERS, "openpump", dataclasses.replace(openpump.SPEC, heartbeat="ws_ping"))
    client = make_client("openpump", sim.url("openpump"), ping_interval=0.2).start()
    wait_until(lambda: client.stats()["connections"][0]["pongs"] >= 3, what="three pong frames")
    stats = client.raw_stats.connections[0]
    assert stats.pings_sent >= 3 and stats.last_rtt is not None
    assert sim.connections("openpump")[0].client_pings == 0  # no application pings were sent


class _LinesTransport:
    """A transport of another kind (as a replay source would be): text lines of a real file as frames."""

    def __init__(self, config: ClientConfig, index: int) -> None:
        self.path = Path(urlsplit(config.url).path)
        self._lines: list[bytes] = []
        self.closed = False

    def open(self, url: str, headers: Any) -> None:
        self._lines = self.path.read_bytes().splitlines()

    def read(self) -> tuple[int, Any]:
        from pumpsync.providers.spec import OP_TEXT, TransportClosed

        if not self._lines or self.closed:
            raise TransportClosed("end of file")
        batch, self._lines = self._lines[:2], self._lines[2:]
        return sum(map(len, batch)), [(OP_TEXT, line) for line in batch]

    def send(self, data: str | bytes) -> bool:
        return True

    def send_ping(self, payload: bytes = b"") -> bool:
        return False

    def send_pong(self, payload: bytes) -> None:
        pass

    def close(self, code: int) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize("frames_kind", ["text", "binary"])
def test_a_provider_transport_feeds_the_same_session_loop(
    tmp_path: Path, make_client: Any, monkeypatch: pytest.MonkeyPatch, frames_kind: str
) -> None:
    """A transport of another kind, with a dialect that reads text frames, or says it reads binary
    ones (``SPEC.frames``): then each text frame is counted malformed (``text``) and still read."""
    frames = [
        {"type": "buy", "mint": "M", "signature": f"S{i}", "solAmount": 1.0, "tokenAmount": 10.0} for i in range(5)
    ]
    path = tmp_path / "frames.jsonl"
    path.write_text("\n".join(json.dumps(f) for f in frames) + "\n")
    spec = dataclasses.replace(
        openpump.SPEC,
        name="lines",
        url_schemes=("file",),
        heartbeat="none",
        transport=_LinesTransport,
        frames=frames_kind,  # type: ignore[arg-type]
    )
    monkeypatch.setitem(PROVIDERS, "lines", spec)
    client = make_client("lines", f"file://localhost{path}", max_retries=1).start()
    events = drain(client, 5)
    assert [e.signature for e in events] == [f"S{i}" for i in range(5)]
    connection = client.stats()["connections"][0]
    assert connection["frames"] == 5
    assert connection["malformed"] == ({"text": 5} if frames_kind == "binary" else {})


def test_daemon_check_shows_urls_as_scheme_and_host_only(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pumpsync.cli.daemon import daemon

    result = CliRunner().invoke(
        daemon,
        ["--check", "--url", "wss://node.example/PATHKEY9/", "--url", "wss://b.example/?api-key=QK9", "--api-key", "k"],
        env={"PUMPSYNC_CONFIG": ""},
    )
    assert result.exit_code == 0, result.output
    assert "PATHKEY9" not in result.output and "QK9" not in result.output
    shown = json.loads(result.output)
    assert shown["client"]["url"] == ["wss://node.example", "wss://b.example"]


def test_every_provider_option_is_a_typed_field_of_its_class() -> None:
    """IDEs and mypy see every option by name: a provider's own in its ProviderSpec.options class,
    the old flat keywords only through ``**deprecated: Unpack[LegacyOptions]`` (a typed dict, no catch-all)."""
    import inspect

    from pumpsync.options import RENAMED, ProviderOptions

    for function in (pumpsync.Client.__init__, pumpsync.connect):
        parameters = inspect.signature(function).parameters
        catch_all = [p for p in parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
        assert [str(p.annotation) for p in catch_all] == ["Unpack[LegacyOptions]"]
        assert "options" in parameters
    for spec in PROVIDERS.values():
        assert issubclass(spec.options_class, ProviderOptions)
        for each in dataclasses.fields(spec.options_class):
            assert RENAMED[each.name] == ("options", each.name)  # each one's old flat keyword still works


class _OldTransport(_LinesTransport):
    """A transport written before ``send(str | bytes)``: ``send_text`` only."""

    send = None  # type: ignore[assignment]

    def send_text(self, text: str) -> bool:
        self.sent = text
        return True


def test_a_transport_with_send_text_only_still_works_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(PROVIDERS, "openpump", dataclasses.replace(openpump.SPEC, transport=_OldTransport))
    with pytest.warns(DeprecationWarning, match="send_text"):
        client = Client("openpump", api_key="k", url="ws://127.0.0.1:9/never-opened")
    (transport,) = client.transports
    assert transport.send("hello") and transport.sent == "hello"  # type: ignore[attr-defined]
    client.close()
