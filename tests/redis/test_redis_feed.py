"""The redis source as an event feed (issue 24 item 4): a refused password is one error, not a
fake HTTP 401 retried; a server that accepts and says nothing is retried and given up on; what
the feed reads is counted as the connection's bytes. A real redis-server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from redishelpers import RedisServer
from test_redis_source import KINDS, open_stream, publish, take

import pumpsync
from pumpsync.errors import AuthenticationError, ConnectionLost

PASSWORD = "feed-pass-41"


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_password_fails_once_and_never_shows_the_password(
    redis_server: RedisServer, redis_db: Any, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    redis_db.execute_command("ACL", "SETUSER", "reader", "on", ">right-one", "~*", "&*", "+@all")
    url = f"redis://reader:{PASSWORD}@127.0.0.1:{redis_server.port}/0?stream=f:auth"
    caplog.set_level(logging.DEBUG)
    with open_stream(kind, url) as stream:
        with pytest.raises(AuthenticationError) as info:
            stream.get(timeout=15)
        stats = stream.stats()
    assert PASSWORD not in str(info.value) and "redis" in str(info.value)
    assert PASSWORD not in caplog.text
    if kind == "client":
        assert stats["connections"][0]["attempts"] == 1  # retrying cannot fix it


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers (a hung Redis behind a load balancer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    done.set()
    thread.join(5)
    for sock in held:
        sock.close()
    listener.close()


def test_a_server_that_accepts_and_says_nothing_is_given_up_on(silent_server: int) -> None:
    url = f"redis://127.0.0.1:{silent_server}/0?stream=f:silent"
    client = pumpsync.connect("redis", url=url, connect_timeout=0.3, max_retries=1, backoff_initial=0.05,
                              backoff_max=0.1)  # fmt: skip
    with client:
        with pytest.raises(ConnectionLost):
            client.get(timeout=30)
        assert client.stats()["connections"][0]["attempts"] >= 2


def test_what_the_feed_reads_is_counted_as_the_connections_bytes(redis_server: RedisServer, redis_db: Any) -> None:
    from prometheus_client import generate_latest

    from pumpsync.metrics import make_registry

    publish(redis_db, "f:bytes", 0, 10)
    with open_stream("client", f"{redis_server.url}?stream=f:bytes&since=0") as client:
        take(client, 10)
        frames = client.stats()["connections"][0]["frames"]
        text = generate_latest(make_registry(client)).decode()
    received = sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("pumpsync_received_bytes"))
    assert received >= 10 * 100  # ten events of a few hundred bytes of JSON each
    assert frames == 10
