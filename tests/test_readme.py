"""The README's Python examples run as printed against `pumpsync simulate` (issue 17, item 1).

Each ```python block runs in a fresh interpreter. The README tells the reader to start
`pumpsync simulate --port 8765`; here the simulator takes free ports, and the two URLs it
prints replace the README's (nothing else in a block is changed). A block that streams forever
is stopped with SIGINT (Ctrl-C) once it has printed three lines; any other traceback fails.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
README_URLS = {"openpump": "ws://127.0.0.1:8765/v1/stream", "anaxer": "ws://127.0.0.1:8766/v1/stream"}


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PUMPSYNC_")}
    clean["PYTHONPATH"] = os.pathsep.join([str(ROOT), clean.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return clean


@pytest.fixture(scope="module")
def simulate() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pumpsync", "simulate", "--rate", "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
    )  # fmt: skip
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    while len(urls) < 3:  # "openpump URL", "anaxer URL", "anaxer-rest URL"
        name, _, url = proc.stdout.readline().strip().partition(" ")
        assert url, proc.stderr.read() if proc.stderr else "no output"
        urls[name] = url
    yield urls
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the blocks run, with the recording the README makes for the replay example."""
    folder = tmp_path_factory.mktemp("readme")
    demo = [sys.executable, "-m", "pumpsync", "demo", "--plain", "--duration", "3", "--metrics-addr", "off"]
    subprocess.run(
        [*demo, "--record", "events.jsonl"], cwd=folder, env=env(), capture_output=True, timeout=120, check=True
    )
    return folder


def test_the_readme_has_the_examples_it_promises() -> None:
    assert len(BLOCKS) >= 3
    assert "pumpsync demo --plain --duration 20 --record events.jsonl" in README


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_example_runs_as_printed(index: int, simulate: dict[str, str], workdir: Path) -> None:
    code = BLOCKS[index]
    for name, url in README_URLS.items():
        code = code.replace(url, simulate[name])
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=workdir, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    wait_until(lambda: len(lines) >= 3 or proc.poll() is not None, 60, f"block {index} to print or end")
    interrupted = proc.poll() is None
    if interrupted:
        proc.send_signal(signal.SIGINT)  # a streaming loop: stop it as a reader would, with Ctrl-C
    proc.wait(30)
    reader.join(10)
    err = proc.stderr.read()
    if interrupted:
        assert err.rstrip().endswith("KeyboardInterrupt"), err
        assert err.count("Traceback") <= 1
    else:
        assert proc.returncode == 0, f"block {index} failed:\n{code}\n{err}"
        assert "Traceback" not in err
    assert lines, f"block {index} printed nothing:\n{code}\n{err}"
