"""The structure targets of issue 24, checked on the source (nothing is imported):

(a) no module under ``pumpsync/`` over 500 lines;
(b) no import cycle among pumpsync modules, counting every import a module writes: at the top, under
    ``if TYPE_CHECKING:`` and inside functions (a lazy import hides a cycle from the interpreter, not
    from the design);
(c) no function over 60 lines without a ``# why long:`` comment line inside it saying why it is not split.

Known offenders would be listed below, each with the helper (or area) that owns it; there are none
today. The lists only shrink: an entry that is no longer an offender fails too, so that it is taken out
when it is fixed.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pumpsync"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
WHY_LONG = "# why long:"

# path relative to the repository -> owner
LONG_MODULES: dict[str, str] = {}

# the modules of one cycle (a strongly connected component of the import graph), sorted -> owner
CYCLES: dict[tuple[str, ...], str] = {}

# "path:qualified name" -> owner
LONG_FUNCTIONS: dict[str, str] = {}


def _modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The package's modules an import statement names (``from a import b`` names ``a.b`` when that is a
    module, else ``a``; the parent packages that Python runs on the way are not counted)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if node.level:
        base = module.split(".")[: None if is_package else -1]
        base = base[: len(base) - node.level + 1]
        source = ".".join([*base, node.module] if node.module else base)
    else:
        source = node.module or ""
    targets = {f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names}
    return {target for target in targets if target in known}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its source."""
    known = _modules(package)
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(module, path.name == "__init__.py", node, known)
        graph[module] = edges - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.add(tuple(sorted(component)))
    return found


def long_modules(package: Path) -> set[str]:
    return {
        str(path.relative_to(package.parent))
        for path in package.rglob("*.py")
        if len(path.read_text().splitlines()) > MAX_MODULE_LINES
    }


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def long_functions(package: Path) -> set[str]:
    """``path:qualified name`` of every function over the limit (its ``def`` line to its last line) that has
    no ``# why long:`` comment line of its own."""
    found = set()
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        why = {t.start[0] for t in tokens if t.type == tokenize.COMMENT and t.string.startswith(WHY_LONG)}
        for name, node in _functions(ast.parse(text, str(path))):
            end = node.end_lineno or node.lineno
            if end - node.lineno + 1 > MAX_FUNCTION_LINES and not any(node.lineno <= line <= end for line in why):
                found.add(f"{path.relative_to(package.parent)}:{name}")
    return found


def _check(kind: str, found: set[str] | set[tuple[str, ...]], allowed: dict) -> None:  # type: ignore[type-arg]
    new = sorted(found - set(allowed))
    fixed = sorted(set(allowed) - found)
    assert not new, f"new {kind} (split it; the limits are in tests/test_structure.py): {new}"
    assert not fixed, f"{kind} no longer offending: take them out of the list in tests/test_structure.py: {fixed}"


def test_no_module_over_500_lines() -> None:
    _check("modules over 500 lines", long_modules(PACKAGE), LONG_MODULES)


def test_no_import_cycle() -> None:
    _check("import cycles", cycles(import_graph(PACKAGE)), CYCLES)


def test_no_function_over_60_lines_without_saying_why() -> None:
    _check(f"functions over 60 lines without a '{WHY_LONG}' comment", long_functions(PACKAGE), LONG_FUNCTIONS)


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """Each check on a small package that breaks it: a cycle through a ``TYPE_CHECKING`` import and a
    relative one, a long module, a long function (and the same one saying why)."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("def f():\n    import pkg.a\n" + "x = 1\n" * MAX_MODULE_LINES)
    (package / "d.py").write_text("class K:\n    def long(self):\n" + "        x = 1\n" * MAX_FUNCTION_LINES)
    (package / "e.py").write_text(f"def long():\n    {WHY_LONG} one table, read top to bottom\n" + "    x = 1\n" * 60)
    assert cycles(import_graph(package)) == {("pkg.a", "pkg.c", "pkg.sub.b")}
    assert long_modules(package) == {"pkg/c.py"}
    assert long_functions(package) == {"pkg/d.py:K.long"}
