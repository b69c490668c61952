"""A real ``redis-server`` per test module: a free port on 127.0.0.1, a temporary directory,
append-only persistence (so that a restart keeps the stream), stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redishelpers import REDIS_SERVER, RedisServer


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        print(f"skipping: {REDIS_SERVER} not found (install the redis-server package)")
        pytest.skip(f"{REDIS_SERVER} not found (install the redis-server package)")
    pytest.importorskip("redis", reason="the redis package is missing: pip install 'pumpsync[redis]'")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[Any]:
    """A client of the module's server, on an empty database (each test starts clean)."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()
