"""Every module of the package imports (simulator, CLI, daemon and bench included), so a name
removed from a dependency shows up here, in CI's newest-versions run, as one line naming the
module, the missing name and the dependency's installed version — not as a user's traceback.

A module that needs an optional extra which is not installed is skipped with that reason."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

import pytest

import pumpsync
import pumpsync_bench
from pumpsync._importcheck import describe

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[str]:
    names = []
    for package in (pumpsync, pumpsync_bench):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name != "pumpsync.__main__":  # runs the CLI when imported
                names.append(info.name)
    return sorted(names)


def _optional() -> dict[str, str]:
    """Import name (as pip spells the distribution, normalised) -> the extra that declares it,
    for the extras' packages that are not also regular dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("-", "_")

    core = {name(r) for r in project["dependencies"]}
    return {
        name(r): extra
        for extra, requirements in project["optional-dependencies"].items()
        if extra != "test"
        for r in requirements
        if name(r) not in core
    }


MODULES = _modules()


def test_the_walk_finds_the_whole_package() -> None:
    for expected in ("pumpsync.simulator.solana", "pumpsync.cli.demo", "pumpsync.daemon.runner", "pumpsync_bench"):
        assert expected in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_imports(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        extra = _optional().get(missing)
        if extra is not None:
            pytest.skip(f"{module} needs the {extra} extra: pip install 'pumpsync[{extra}]'")
        pytest.fail(describe(module, exc), pytrace=False)
    except Exception as exc:  # a broken dependency may raise anything at import
        pytest.fail(describe(module, exc), pytrace=False)


def test_a_removed_name_is_one_line_naming_module_name_and_version(tmp_path: Path) -> None:
    """The line the test above prints, for a dependency that dropped a name (websockets 17 and
    ``OP_PONG``), shown on a throwaway module."""
    pkg = tmp_path / "pumpsync_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from websockets.frames import NO_SUCH_NAME\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ImportError) as caught:
            importlib.import_module("pumpsync_probe")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pumpsync_probe", None)
    import websockets.version

    line = describe("pumpsync_probe", caught.value)
    assert "\n" not in line
    assert line.startswith("pumpsync_probe: cannot import name 'NO_SUCH_NAME' from 'websockets.frames'")
    assert line.endswith(f"(websockets {websockets.version.version})")
