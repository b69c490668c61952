"""Fixtures for the daemon tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from daemonhelpers import DaemonProc


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProc]]:
    """Start ``pumpsync daemon`` subprocesses; any still running at the end of the test are killed."""
    procs: list[DaemonProc] = []

    def start(args: Sequence[str], env: dict[str, str] | None = None, name: str | None = None,
              **options: Any) -> DaemonProc:  # fmt: skip
        proc = DaemonProc(args, tmp_path, env, name or f"daemon{len(procs)}", **options)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
