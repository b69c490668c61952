"""One Client built from per-source engines (issue 24, items 1 and 3): no import cycle among the
core modules (type-only imports included), every method the same with one source or many, no
reference cycle left by a closed client of several sources, and the transport seam's
``send(str | bytes)`` on a real socket."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import pumpsync
from pumpsync import Source
from pumpsync._transport import WebSocketTransport
from pumpsync.config import make_config
from pumpsync.simulator import Simulator
from tests.conftest import FAST, wait_until
from tests.hardening.hardening_support import OP_BINARY, OP_TEXT, RawWs, RawWsServer

ROOT = Path(pumpsync.__file__).parent
# The core a client is made of: none of these may import another that imports it back.
CORE = (
    "client",
    "_engine",
    "_sources",
    "_connection",
    "_supervisor",
    "_recovery",
    "_pages",
    "_hold",
    "_delivery",
    "_race",
    "_hooks",
    "_stats",
    "_gaps",
    "_subscriptions",
    "providers.base",
)


def _imports(module: str) -> set[str]:
    """Every pumpsync module ``module`` imports, at any level (functions and TYPE_CHECKING too)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pumpsync."):
            found.add(node.module.removeprefix("pumpsync."))
    return found


def test_no_import_cycle_among_the_core_modules_type_only_imports_included() -> None:
    graph = {module: _imports(module) & set(CORE) for module in CORE}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            here = todo.pop()
            for there in graph[here]:
                if there == goal:
                    return True
                if there not in seen:
                    seen.add(there)
                    todo.append(there)
        return False

    cycles = [module for module in CORE if reaches(module, module)]
    assert cycles == [], f"import cycles through {cycles}: {graph}"


def test_one_client_class_whatever_the_sources() -> None:
    assert "__new__" not in vars(pumpsync.Client)
    assert not hasattr(pumpsync, "MultiClient")
    client = pumpsync.Client(sources=[Source("openpump", api_key="a"), Source("anaxer", api_key="b")])
    assert type(client) is pumpsync.Client
    client.close()


@pytest.fixture
def two() -> Iterator[Simulator]:
    with Simulator(providers=("openpump", "anaxer"), rate=0, seed=5) as sim:
        yield sim


def test_every_method_works_with_several_sources(two: Simulator) -> None:
    sources = [
        Source("openpump", api_key="k", url=two.url("openpump")),
        Source("anaxer", api_key="k", url=two.url("anaxer"), rest_url=two.rest_url("anaxer")),
    ]
    with pumpsync.Client(sources=sources, **FAST) as client:
        wait_until(lambda: client.ready, what="a ready source")
        # history_stats() raised AttributeError on a multi-source client before.
        history = client.history_stats()
        assert history == client.members["anaxer"].history_stats() and "gaps_lost" in history
        assert client.gaps() == client.members["anaxer"].gaps() + client.members["openpump"].gaps()
        stats = client.stats()
        assert set(stats["sources"]) == {"openpump", "anaxer"} and "history" in stats and "gaps" in stats
        assert [s.channel for s in client.subscriptions()] == [
            *(s.channel for s in client.members["openpump"].subscriptions()),
            *(s.channel for s in client.members["anaxer"].subscriptions()),
        ]
        assert client.supervisor_alive and len(client.transports) == 2 and client.connected
        with pytest.raises(pumpsync.errors.UsageError, match="members"):
            client.status()


def test_websocket_transport_sends_str_as_text_and_bytes_as_binary() -> None:
    got: list[tuple[int, bytes]] = []
    done = threading.Event()

    def script(ws: RawWs) -> None:
        got.append(ws.read_frame())
        got.append(ws.read_frame())
        done.set()
        ws.hold()

    with RawWsServer(script) as server:
        transport = WebSocketTransport(make_config("openpump", api_key="k", url=server.url), 0)
        transport.open(server.url, {})
        try:
            assert transport.send('{"a":1}') and transport.send(b"\x00\x01binary")
            assert done.wait(10), "the server read no frames"
        finally:
            transport.shutdown()
    assert got == [(OP_TEXT, b'{"a":1}'), (OP_BINARY, b"\x00\x01binary")]
    assert not transport.send("after shutdown")  # False when not open
