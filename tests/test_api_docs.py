"""An API reference users can look up (issue 28): every public name documented, and the
reference built from the docstrings with pdoc (`pip install 'pumpsync[docs]'`)."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pumpsync

ROOT = Path(__file__).resolve().parents[1]
# NamedTuple's own helpers and the like: documented by the standard library.
_INHERITED_OK = {"count", "index", "_make", "_asdict", "_replace", "_fields", "_field_defaults"}


def _undocumented() -> list[str]:
    missing: list[str] = []
    for name in pumpsync.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(pumpsync, name)
        doc = (getattr(obj, "__doc__", None) or "").strip()
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and (not doc or doc.startswith(f"{name}(")):
            missing.append(name)  # a NamedTuple's generated "Name(field, ...)" is no documentation
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_") or attr in _INHERITED_OK:
                continue
            target = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if callable(target) and not (getattr(target, "__doc__", None) or "").strip():
                missing.append(f"{name}.{attr}")
    return missing


def test_every_public_name_and_method_has_a_docstring() -> None:
    assert _undocumented() == []


def test_help_client_and_stats_say_something_real() -> None:
    assert "README" not in (pumpsync.Client.__doc__ or "")[:200]
    stats = pumpsync.Client.stats.__doc__ or ""
    assert "connections" in stats and "queue_depth" in stats


@pytest.mark.timeout(300)
def test_the_api_reference_builds(tmp_path: Path) -> None:
    if shutil.which("pdoc") is None and subprocess.run([sys.executable, "-c", "import pdoc"]).returncode:
        pytest.skip("pdoc is not installed (pip install 'pumpsync[docs]')")
    out = tmp_path / "api"
    done = subprocess.run(
        [sys.executable, "-m", "pdoc", "--output-directory", str(out), *DOC_MODULES],
        capture_output=True, text=True, cwd=ROOT, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = (out / "pumpsync.html").read_text(encoding="utf-8")
    for name in ("Client", "connect", "Trade", "on_event", "UsageError"):
        assert name in page
    assert (out / "index.html").exists()


DOC_MODULES = ["pumpsync", "pumpsync.errors", "pumpsync.events", "pumpsync.views"]
