"""Fixtures of the hardening tests: purpose-built servers that are always closed, certificates,
and the checks every fault test makes (a clear log line, no traceback, no busy loop)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # hardening_support, whatever the import mode

from hardening_support import Certificates, TcpServer, make_certificates

S = TypeVar("S", bound=TcpServer)


@pytest.fixture
def servers() -> Iterator[Callable[[S], S]]:
    """``servers(SomeServer(...))`` registers a server to close at the end of the test."""
    started: list[TcpServer] = []

    def register(server: S) -> S:
        started.append(server)
        return server

    yield register
    for server in reversed(started):
        server.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def pumpsync_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every pumpsync record at DEBUG and up."""
    caplog.set_level(logging.DEBUG, logger="pumpsync")
    return caplog
