"""Packaging ready to publish (issue 28): `python -m build` and `twine check --strict` clean, and
the wheel installs into a fresh virtualenv, away from the source tree: alone (the library), its demo
says which extra it needs; with the tools extra, it runs the demo."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.mark.timeout(900)
@pytest.mark.skipif(
    importlib.util.find_spec("build") is None or importlib.util.find_spec("twine") is None,
    reason="needs build and twine (pip install build twine)",
)
def test_build_twine_check_and_the_wheel_runs_the_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "build", "--outdir", dist, ROOT, cwd=tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    warnings = [line for line in (built.stdout + built.stderr).splitlines() if "deprecat" in line.lower()]
    assert not warnings, warnings
    (wheel,) = dist.glob("pumpsync-*.whl")
    (sdist,) = dist.glob("pumpsync-*.tar.gz")
    checked = _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=True)
    python = fresh / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr[-3000:]
    where = _run(python, "-c", "import pumpsync; print(pumpsync.__file__, pumpsync.__version__)", cwd=tmp_path)
    assert where.returncode == 0 and str(fresh) in where.stdout, where.stdout + where.stderr
    # The wheel alone is the library: the demo names the extra it needs, in one line.
    hint = _run(fresh / "bin" / "pumpsync", "demo", cwd=tmp_path, timeout=120)
    assert hint.returncode == 1 and hint.stdout == "", hint.stderr
    assert len(hint.stderr.splitlines()) == 1 and "pip install 'pumpsync[tools]'" in hint.stderr, hint.stderr
    tools = _run(python, "-m", "pip", "install", "-q", f"pumpsync[tools] @ {wheel.as_uri()}", cwd=tmp_path)
    assert tools.returncode == 0, tools.stderr[-3000:]
    demo = _run(fresh / "bin" / "pumpsync", "demo", "--plain", "--duration", "3", "--metrics-addr", "off",
                cwd=tmp_path, timeout=120)  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert len(demo.stdout.splitlines()) > 3 and "anaxer" in demo.stdout
