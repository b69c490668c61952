"""One line for a module that cannot be imported: which module, which name is missing, which
dependency (and its installed version) is to blame.

Used by the command line (a command that cannot load says this when run) and by
``tests/test_imports.py`` (so a name removed from a dependency shows up as this line in CI). A
dependency that an extra declares and that is not installed is named with the extra to install
(:func:`missing_extra`): the library's install leaves the tooling out.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import traceback
from types import ModuleType

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def installed_version(module: str) -> str:
    """``"websockets 17.4"`` for ``websockets.frames``; ``"base58 not installed"`` when absent."""
    top = module.split(".")[0]
    distributions = importlib.metadata.packages_distributions().get(top, [top])
    for dist in distributions:
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"{top} not installed"


def _culprit(exc: BaseException) -> str | None:
    """The module whose name or attribute is missing, when the exception says."""
    if isinstance(exc, ImportError) and exc.name:
        return exc.name
    if isinstance(exc, AttributeError) and isinstance(exc.obj, ModuleType):  # `websockets.OP_PONG`
        return exc.obj.__name__
    return None


def _failing_module(module: str, exc: BaseException) -> str:
    """The innermost of our own modules in the traceback: where the broken import is written."""
    failing = module
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if path.startswith(_PACKAGE_DIR + os.sep):
            rel = os.path.relpath(path, os.path.dirname(_PACKAGE_DIR))
            failing = rel.removesuffix(".py").removesuffix("/__init__").replace(os.sep, ".")
    return failing


def describe(module: str, exc: BaseException) -> str:
    """One line: ``pumpsync.simulator.solana: cannot import name 'OP_PONG' from 'websockets.frames'
    (websockets 17.4)``."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        what = f"no module named {exc.name!r}"
    elif isinstance(exc, ImportError):
        what = exc.msg.split(" (")[0]  # drop the file path the message ends with
    else:
        what = f"{type(exc).__name__}: {exc}"
    culprit = _culprit(exc)
    blame = f" ({installed_version(culprit)})" if culprit and culprit.split(".")[0] != "pumpsync" else ""
    return f"{_failing_module(module, exc)}: {what}{blame}"


def _extra_of(module: str) -> str | None:
    """The extra of pumpsync's own metadata that declares ``module``'s distribution (``"tools"`` for
    ``websockets``); the test extra, which repeats the others, only when no other does."""
    top = module.split(".")[0].lower().replace("-", "_")
    try:
        requirements = importlib.metadata.requires("pumpsync") or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return None
    extras = []
    for requirement in requirements:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("-", "_")
        extra = re.search(r"""extra\s*==\s*["']([\w-]+)["']""", requirement)
        if name == top and extra:
            extras.append(extra.group(1))
    others = [extra for extra in extras if extra != "test"]
    return (others or extras or [None])[0]


def missing_extra(exc: BaseException) -> tuple[str, str] | None:
    """For a dependency that is not installed and that an extra declares: ``("tools", "rich")``, the
    extra and the missing package; ``None`` for anything else (a broken install is :func:`describe`'s)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top == "pumpsync":
        return None
    if exc.name != top and importlib.util.find_spec(top) is not None:
        return None  # installed, but a release without that module: describe() names its version
    extra = _extra_of(top)
    return None if extra is None else (extra, top)


def install_hint(what: str, extra: str, package: str) -> str:
    """One line: ``pumpsync top needs the tools extra (no module named 'rich'): pip install 'pumpsync[tools]'``."""
    return f"{what} needs the {extra} extra (no module named {package!r}): pip install 'pumpsync[{extra}]'"
