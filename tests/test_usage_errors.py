"""Usage errors at once, never a hang (issue 28): never started, started twice, used after close."""

from __future__ import annotations

import pytest

import pumpsync
from pumpsync import ClientClosed, UsageError


def _client(**options: object) -> pumpsync.Client:
    return pumpsync.Client("openpump", api_key="k", url="ws://127.0.0.1:9/", **options)  # type: ignore[arg-type]


@pytest.mark.timeout(10)
def test_a_never_started_client_says_so_at_once() -> None:
    client = _client()
    with pytest.raises(UsageError, match=r"never started.*start"):
        client.get(timeout=1)
    with pytest.raises(UsageError, match="never started"):
        iter(client)
    with pytest.raises(UsageError, match="never started"):
        next(iter(client))
    client.close()


@pytest.mark.timeout(10)
def test_a_never_started_multi_source_client_says_so_at_once() -> None:
    client = pumpsync.Client(sources=[pumpsync.Source("openpump", api_key="k", url="ws://127.0.0.1:9/")])
    with pytest.raises(UsageError, match="never started"):
        client.get()
    client.close()


@pytest.mark.timeout(10)
def test_started_twice_and_used_after_close() -> None:
    client = _client(backoff_initial=5)
    client.start()
    with pytest.raises(UsageError, match="already running"):
        client.start()
    client.close()
    with pytest.raises(UsageError, match="closed"):
        client.start()
    with pytest.raises(UsageError, match="closed"), client:
        pass
    with pytest.raises(UsageError, match="closed"):
        client.subscribe("anything")
    with pytest.raises(ClientClosed):  # at once, never a wait
        client.get()
    assert list(client) == []
