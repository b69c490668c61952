"""The geyser provider's configuration: the alias, TLS rules, the missing extra, metrics at zero."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pumpsync.config import make_config
from pumpsync.errors import ConfigurationError


def test_yellowstone_is_an_alias() -> None:
    pytest.importorskip("grpc")
    config = make_config("yellowstone", url="https://grpc.example.com:443")
    assert config.spec.name == "geyser"


def test_plain_text_only_for_a_local_server() -> None:
    pytest.importorskip("grpc")
    make_config("geyser", url="http://127.0.0.1:10000")
    with pytest.raises(ConfigurationError, match="only for a local server"):
        make_config("geyser", url="http://grpc.example.com:10000", api_key="k")


def test_without_grpcio_one_line_names_the_install_command() -> None:
    code = (
        "import sys; sys.modules['grpc'] = None\n"
        "from pumpsync import Client\n"
        "Client('geyser', url='https://grpc.example.com')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "pip install 'pumpsync[geyser]'" in last


def test_the_geyser_metrics_are_exported_at_zero_from_the_first_scrape() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from pumpsync.providers.geyser._counts import NAMES, GeyserCollector

    registry = CollectorRegistry()
    registry.register(GeyserCollector())
    body = generate_latest(registry).decode()
    for name in NAMES:
        assert f"pumpsync_geyser_{name}_total " in body


def test_a_proxy_is_refused_not_ignored() -> None:
    pytest.importorskip("grpc")
    with pytest.raises(ConfigurationError, match="proxy"):
        make_config("geyser", url="https://grpc.example.com", proxy="http://127.0.0.1:3128")


def test_a_replay_book_forgotten_while_its_lock_is_held_does_not_deadlock() -> None:
    """A config's finalizer runs wherever the garbage collector does, also inside ``book_for``'s
    critical section on the thread holding the books' lock (seen in CI: a 120 s hang, ended only by
    pytest-timeout's alarm). Forgetting a book must not take that lock."""
    import importlib
    import threading

    _history = importlib.import_module("pumpsync.providers.geyser._history")  # the package has a _history()

    done = threading.Event()

    def collect_inside_book_for() -> None:
        with _history._BOOKS_LOCK:
            _history._forget(-1)  # what the collector does there
        done.set()

    worker = threading.Thread(target=collect_inside_book_for, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set(), "forgetting a book while its lock is held deadlocked the thread"
