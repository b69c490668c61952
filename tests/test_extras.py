"""The declared dependencies are what the code and tests need (issue 21): a test module that
imports a package no extra declares fails here, not on a new user's machine at collection; the
minimum-versions constraints file (.ci/constraints-min.txt) pins exactly the declared minimums."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
# What a user runs: the library, the tooling (simulator, demo, top), Redis Streams.
RUNTIME = [*PROJECT["dependencies"], *EXTRAS["tools"], *EXTRAS["redis"]]


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip()


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _declared_imports() -> set[str]:
    """Import names of every declared distribution: the installed ones' real top-level packages
    (PyYAML is ``yaml``), and every one's own name (an extra's package need not be installed)."""
    requirements = [*PROJECT["dependencies"]] + [r for rs in PROJECT["optional-dependencies"].values() for r in rs]
    declared = {_normal(_dist(r)) for r in requirements}
    names = set(declared)
    for top, dists in importlib.metadata.packages_distributions().items():
        if any(_normal(d) in declared for d in dists):
            names.add(top)
    return names


def _imports(path: Path) -> set[str]:
    """The top-level packages a file imports, but a module it writes itself (``"x_mod.py"``)."""
    names: set[str] = set()
    written: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".py"):
            written.add(node.value.removesuffix(".py"))
    return names - written


def undeclared(tests: Path, declared: set[str]) -> dict[str, set[str]]:
    """Test module -> the packages it imports that are neither the standard library, pumpsync,
    a helper module of the tests, nor declared."""
    local = {p.stem for p in tests.rglob("*.py")} | {p.name for p in tests.rglob("*") if p.is_dir()} | {tests.name}
    stdlib = set(sys.stdlib_module_names) | {"tomllib"}  # 3.11's; 3.10 imports the declared tomli instead
    allowed = declared | stdlib | local | {"pumpsync", "pumpsync_bench"}  # the distribution's own packages
    found = {}
    for path in sorted(tests.rglob("*.py")):
        extra = _imports(path) - allowed
        if extra:
            found[str(path.relative_to(tests))] = extra
    return found


def test_every_package_the_tests_import_is_declared() -> None:
    assert undeclared(ROOT / "tests", _declared_imports()) == {}


def test_an_undeclared_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "test_new.py").write_text("import base58\nimport json\nfrom helper import x\nfrom . import y\n")
    (tmp_path / "helper.py").write_text("x = 1\n")
    assert undeclared(tmp_path, {"pytest"}) == {"test_new.py": {"base58"}}
    assert undeclared(tmp_path, {"base58"}) == {}


def test_the_minimum_constraints_pin_the_declared_minimums() -> None:
    minimums: dict[str, str] = {}
    for requirement in RUNTIME:
        found = re.search(r">=\s*([\w.]+)", requirement)
        assert found, f"no declared minimum: {requirement}"
        minimums[_normal(_dist(requirement))] = found.group(1)
    pinned = {}
    for line in (ROOT / ".ci" / "constraints-min.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            dist, version = line.split("==")
            pinned[_normal(dist)] = version

    def release(version: str) -> tuple[int, ...]:
        parts = [int(p) for p in version.split(".")]
        return tuple(parts + [0] * (3 - len(parts)))

    assert {d: release(v) for d, v in pinned.items()} == {d: release(v) for d, v in minimums.items()}


def test_every_runtime_dependency_has_a_tested_upper_end() -> None:
    """Ranges, not open ends: the newest-versions CI run tests the top of each."""
    for requirement in RUNTIME:
        if "python_version" not in requirement:  # tomli: a backport, only below 3.11
            assert "<" in requirement, requirement


def test_the_library_needs_no_tooling_and_the_tests_have_all_of_it() -> None:
    """``pip install pumpsync`` is the library: the simulator's and ``top``'s packages come with the tools
    extra; the test extra repeats every tools requirement as written (the suite runs the simulator)."""
    base = {_normal(_dist(r)) for r in PROJECT["dependencies"]}
    assert base.isdisjoint({"websockets", "rich"}), base
    assert set(EXTRAS["tools"]) <= set(EXTRAS["test"])
