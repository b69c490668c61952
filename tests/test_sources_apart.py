"""Several sources you can tell apart (issue 28): log lines, text lines, `top` rows name their source."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pumpsync
from pumpsync.cli._render import to_text
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]


def test_log_lines_from_a_clients_threads_name_the_source(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pumpsync")
    client = pumpsync.Client(
        sources=[
            pumpsync.Source("anaxer", api_key="k", url=sim.url("anaxer")),
            pumpsync.Source("anaxer", name="anaxer-eu", api_key="k", url=sim.url("anaxer")),
        ],
        ping_interval=5,
    )
    with client:
        wait_until(
            lambda: (
                {"anaxer: connection 0: open", "anaxer-eu: connection 0: open"}
                <= {r.getMessage() for r in caplog.records}
            ),
            what="both sources' open lines",
        )
    sourced = [r for r in caplog.records if r.getMessage().startswith("anaxer-eu: ")]
    assert sourced and all(getattr(r, "source", None) == "anaxer-eu" for r in sourced)
    assert not any(r.getMessage().startswith("anaxer-eu: anaxer-eu") for r in caplog.records)  # once


def test_a_single_client_names_its_provider(sim: Any, make_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pumpsync")
    client = make_client("openpump", sim.url("openpump")).start()
    wait_until(lambda: any(r.getMessage() == "openpump: connection 0: open" for r in caplog.records))
    client.close()


def test_text_lines_name_the_provider(sim: Any, make_client: Any) -> None:
    event = pumpsync.Event("trade", "pumpportal", "MINT", "sig", 1, None, 1_700_000_000_000, 0, False, {})
    line = to_text(event._replace(side="buy", sol_amount=1.0))
    assert " pumpportal BUY   MINT" in line


def test_named_sources_of_one_provider_on_the_command_line(sim: Any) -> None:
    url = sim.url("openpump")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PUMPSYNC_OPENPUMP_API_KEY": "k"}
    done = subprocess.run(
        [sys.executable, "-m", "pumpsync", "top", "--source", f"east@openpump={url}",
         "--source", f"west@openpump={url}", "--duration", "2", "-v"], capture_output=True, text=True, timeout=60,
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "east #0" in done.stdout and "west #0" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--source", f"@openpump={url}"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert bad.returncode == 2 and "'--source'" in bad.stderr and "source name" in bad.stderr
