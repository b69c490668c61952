"""TLS and transport: certificates and host names are verified by default, an explicit CA bundle
is honoured, one ``proxy`` option carries both the stream and the REST backfill, and a key bound
for plain ``ws://`` on a non-loopback host is warned about once."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from hardening_support import (
    Certificates,
    ConnectProxy,
    TlsFront,
    assert_no_tracebacks,
    cpu_meter,
    warnings_of,
)

import pumpsync
import pumpsync.config
from pumpsync import ConfigurationError
from tests.conftest import drain, wait_until

KEY = "transport-Key-5f3c9a"


@pytest.fixture(autouse=True)
def _no_ambient_tls_or_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests must show the library's defaults, not this machine's environment.
    for name in (
        "WEBSOCKET_CLIENT_CA_BUNDLE",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def conn_stats(client: pumpsync.Client) -> dict[str, Any]:
    stats: dict[str, Any] = client.stats()["connections"][0]
    return stats


# ---------------------------------------------------------------- TLS


@pytest.mark.parametrize("issuer", ["self-signed certificate", "private CA"])
def test_wss_refuses_a_self_signed_server_by_default(
    sim, servers, certs: Certificates, make_client, pumpsync_logs, capfd, issuer: str
) -> None:
    cert, key = (certs.self_signed, certs.self_signed_key) if issuer.startswith("self") else (certs.cert, certs.key)
    front = servers(TlsFront(cert, key, sim.port("openpump")))
    url = f"wss://127.0.0.1:{front.port}/v1/stream"
    # The tests' short backoff (<= 0.3 s): the CA store is loaded once, not on every attempt (~25 ms each).
    client = make_client("openpump", url, api_key=KEY).start()
    with cpu_meter() as share:
        wait_until(lambda: front.handshakes_failed >= 8, what="eight refused handshakes")
        assert share() < 0.2
    assert front.handshakes_ok == 0 and not client.connected and client.error is None
    lines = [w for w in warnings_of(pumpsync_logs) if "reconnecting in" in w]
    assert lines and all("TLS certificate verification failed for 127.0.0.1" in w for w in lines), lines[:2]
    assert "pass ca_bundle" in lines[0]
    client.close()
    assert_no_tracebacks(pumpsync_logs, capfd)


def test_wss_accepts_a_self_signed_server_given_its_certificate(sim, servers, certs: Certificates, make_client) -> None:
    front = servers(TlsFront(certs.self_signed, certs.self_signed_key, sim.port("openpump")))
    url = f"wss://127.0.0.1:{front.port}/v1/stream"
    client = make_client("openpump", url, api_key=KEY, ca_bundle=str(certs.self_signed)).start()
    wait_until(lambda: client.connected, what="connected over TLS")
    sim.wait_for_connections("openpump", 1, subscribed=True, timeout=10)
    sim.emit(1, kind="launch")
    assert drain(client, 1)[0].kind == "new_token"
    assert front.handshakes_failed == 0


@pytest.mark.parametrize(
    "environment",
    [
        "clean",
        "REQUESTS_CA_BUNDLE set",
    ],
)
def test_wss_accepts_it_with_an_explicit_ca_bundle_stream_and_backfill(
    certs: Certificates, servers, make_client, monkeypatch, environment: str
) -> None:
    from pumpsync.simulator import Simulator

    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if environment != "clean":  # a machine-wide bundle that does not know our CA
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl_default_bundle())
    with Simulator(providers=("anaxer",), rate=0, seed=5) as sim:
        sim.emit(3, kind="launch")  # history for the backfill to fetch over https
        front = servers(TlsFront(certs.cert, certs.key, sim.port("anaxer")))
        url = f"wss://127.0.0.1:{front.port}/v1/stream"
        client = make_client("anaxer", url, api_key=KEY, ca_bundle=str(certs.ca), channels={"creations": {}}, since=0)
        assert pumpsync.config.rest_base(client.config) == f"https://127.0.0.1:{front.port}"
        client.start()
        backfilled = drain(client, 3, timeout=6)
        assert all(e.backfill for e in backfilled)  # REST over https, verified against the same CA
        sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
        sim.emit(1, kind="launch")
        (live,) = drain(client, 1)
        assert not live.backfill and live.kind == "new_token"
        assert front.handshakes_ok >= 2 and front.handshakes_failed == 0
        assert client.stats()["backfill"]["failures"] == 0


def ssl_default_bundle() -> str:
    import ssl

    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile


def test_host_name_is_verified_too(sim, servers, certs: Certificates, make_client, pumpsync_logs) -> None:
    # Signed by the trusted CA, but for somewhere-else.example: still refused.
    front = servers(TlsFront(certs.wrong_cert, certs.wrong_key, sim.port("openpump")))
    client = make_client("openpump", f"wss://127.0.0.1:{front.port}/v1/stream", ca_bundle=str(certs.ca)).start()
    wait_until(lambda: front.handshakes_failed >= 2, what="refused handshakes")
    assert front.handshakes_ok == 0 and not client.connected
    assert any(re.search(r"TLS certificate verification failed.*mismatch", w) for w in warnings_of(pumpsync_logs))


def test_a_missing_ca_bundle_file_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError) as info:
        pumpsync.Client("openpump", api_key=KEY, url="wss://127.0.0.1:1/v1/stream", ca_bundle=str(tmp_path / "nope"))
    assert info.value.option == "ca_bundle"


# ---------------------------------------------------------------- proxy


@pytest.mark.parametrize(
    "environment",
    [
        "no_proxy names the host",  # must not send the stream around an explicitly configured proxy
        "HTTP_PROXY names another proxy",
    ],
)
def test_http_proxy_carries_the_stream_and_the_backfill(
    servers, make_client, monkeypatch, pumpsync_logs, environment: str
) -> None:
    from pumpsync.simulator import Simulator

    if environment.startswith("no_proxy"):
        monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    else:
        other = servers(ConnectProxy(credentials=("nobody", "nothing")))  # refuses everyone
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{other.port}")
    proxy = servers(ConnectProxy(credentials=("user", "p@ss:word")))
    proxy_url = f"http://user:p%40ss%3Aword@127.0.0.1:{proxy.port}"
    with Simulator(providers=("anaxer",), rate=0, seed=6) as sim:
        sim.emit(2, kind="launch")
        client = make_client(
            "anaxer", sim.url("anaxer"), api_key=KEY, proxy=proxy_url, channels={"creations": {}}, since=0
        ).start()
        assert all(e.backfill for e in drain(client, 2, timeout=6))
        sim.wait_for_connections("anaxer", 1, subscribed=True, timeout=10)
        sim.emit(1, kind="launch")
        assert not drain(client, 1)[0].backfill
        port = sim.port("anaxer")
    assert ("CONNECT", f"127.0.0.1:{port}") in proxy.log  # the stream, tunnelled
    assert any(m == "GET" and t.startswith(f"http://127.0.0.1:{port}/v1/creations") for m, t in proxy.log)  # REST
    assert proxy.refused == 0  # credentials went through, percent-decoded
    for text in (repr(client.config), pumpsync_logs.text):
        assert "p@ss" not in text and "p%40ss" not in text


def test_proxy_refusing_us_retries_with_a_clear_line(sim, servers, make_client, pumpsync_logs) -> None:
    proxy = servers(ConnectProxy(credentials=("user", "secret")))
    client = make_client("openpump", sim.url("openpump"), proxy=f"http://127.0.0.1:{proxy.port}").start()
    wait_until(lambda: proxy.refused >= 3, what="three refusals")
    assert not client.connected and client.error is None
    assert any("the proxy failed" in w and "407" in w for w in warnings_of(pumpsync_logs))


@pytest.mark.parametrize(
    "proxy",
    ["ftp://proxy:21", "http://", "https://proxy:3128", "http://proxy:99999", "proxy:3128", "http://u:secret@:1"],
)
def test_unusable_proxy_urls_are_configuration_errors(proxy: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        pumpsync.Client("openpump", api_key=KEY, url="ws://127.0.0.1:1/v1/stream", proxy=proxy)
    assert info.value.option == "proxy" and "secret" not in str(info.value)


def test_socks_proxy_needs_its_packages() -> None:
    import importlib.util

    if importlib.util.find_spec("python_socks") and importlib.util.find_spec("socks"):
        pytest.skip("python-socks and PySocks are installed: SOCKS proxies are usable")
    with pytest.raises(ConfigurationError, match="pip install") as info:
        pumpsync.Client("anaxer", api_key=KEY, url="ws://127.0.0.1:1/v1/stream", proxy="socks5h://127.0.0.1:1080")
    assert info.value.option == "proxy"


# ---------------------------------------------------------------- plain ws:// to a remote host


def test_a_key_over_plain_ws_to_a_remote_host_is_warned_once_per_host(monkeypatch, caplog) -> None:
    monkeypatch.setattr(pumpsync.config, "_plaintext_warned", set())
    caplog.set_level(logging.WARNING, logger="pumpsync")

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]

    pumpsync.Client("openpump", api_key=KEY)  # the provider's documented URL: ws://api.openpump.io/v1/stream
    pumpsync.Client("openpump", api_key=KEY, auth="header")
    assert len(warned()) == 1 and "api.openpump.io" in warned()[0] and KEY not in warned()[0]
    for url in (
        "ws://127.0.0.1:9/v1/stream",
        "ws://localhost:9/v1/stream",
        "ws://[::1]:9/v1/stream",
        "wss://api.openpump.io/v1/stream",
        "wss://elsewhere.example/v1/stream",
    ):
        pumpsync.Client("openpump", api_key=KEY, url=url)
    assert len(warned()) == 1
    pumpsync.Client("openpump", api_key=KEY, url="ws://10.1.2.3:8080/v1/stream")
    pumpsync.Client("anaxer", api_key=KEY, url="wss://api.anaxer.com/v1/stream", rest_url="http://rest.example")
    pumpsync.Client(
        "anaxer", api_key=KEY, url="wss://api.anaxer.com/v1/stream", rest_url="http://quiet.example", backfill=False
    )
    hosts = [re.search(r"to (\S+):", w).group(1) for w in warned()]  # type: ignore[union-attr]
    assert hosts == ["api.openpump.io", "10.1.2.3", "rest.example"]
