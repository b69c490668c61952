"""``pumpsync --help`` and every sub-command's ``--help`` work where a dependency is missing or
broken (issue 21): the commands load lazily; one that cannot load is listed like the others and
says why, in one line, when run. Each case runs in a fresh interpreter where the dependency is made
unimportable (``sys.modules[name] = None``), the way a fresh machine without it behaves."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pumpsync.cli import _COMMANDS

OPTIONAL = ("picows", "redis", "python_socks", "socks")  # the bench, redis and socks extras


def pumpsync(args: list[str], block: tuple[str, ...], broken: str = "") -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"for name in {block!r}: sys.modules[name] = None\n"
        f"{broken}\n"
        "from pumpsync.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60)


def test_without_the_optional_extras_every_help_is_the_real_help() -> None:
    listed = pumpsync(["--help"], OPTIONAL)
    assert listed.returncode == 0, listed.stderr
    for name in _COMMANDS:
        assert f"  {name} " in listed.stdout
        assert "cannot load" not in listed.stdout
        helped = pumpsync([name, "--help"], OPTIONAL)
        assert helped.returncode == 0, helped.stderr
        assert helped.stdout.startswith(f"Usage: pumpsync {name} [OPTIONS]") and "--help" in helped.stdout


def test_a_missing_extra_is_listed_then_named_in_one_line_with_its_install_line() -> None:
    """The library's install (``pip install pumpsync``) has neither the simulator's websockets nor
    ``top``'s rich: each command that needs them says which extra to install."""
    listed = pumpsync(["--help"], ("websockets", "rich"))
    assert listed.returncode == 0 and listed.stderr == ""
    assert "Traceback" not in listed.stdout
    for name in _COMMANDS:
        assert f"  {name} " in listed.stdout
    assert "demo      (needs pip install 'pumpsync[tools]')" in listed.stdout
    assert "top       (needs pip install 'pumpsync[tools]')" in listed.stdout
    assert "stream    Stream events" in listed.stdout  # the commands that load show their own help
    cases = {  # the words that name it, the package it misses (the demo: whichever it imports first)
        ("demo",): ("pumpsync demo", "websockets|rich"),
        ("demo", "--help"): ("pumpsync demo", "websockets|rich"),
        ("simulate", "--port", "1"): ("pumpsync simulate", "websockets"),
        ("top", "--provider", "openpump"): ("pumpsync top", "rich"),
        ("daemon", "--demo"): ("pumpsync daemon --demo", "websockets"),
    }
    for args, (what, package) in cases.items():
        ran = pumpsync(list(args), ("websockets", "rich"))
        assert ran.returncode == 1 and ran.stdout == "", ran.stderr
        (line,) = ran.stderr.splitlines()
        said = rf"Error: {what} needs the tools extra \(no module named '({package})'\): "
        assert re.fullmatch(said + re.escape("pip install 'pumpsync[tools]'"), line), line


@pytest.mark.parametrize("name", ["demo", "simulate"])
def test_a_broken_dependency_names_the_module_the_name_and_the_version(name: str) -> None:
    """A release that dropped a name the simulator imports (websockets 17 and ``OP_PONG``)."""
    import websockets.version

    broken = "import websockets.frames\ndel websockets.frames.Opcode"
    listed = pumpsync(["--help"], (), broken)
    assert listed.returncode == 0 and "Traceback" not in listed.stdout + listed.stderr
    ran = pumpsync([name], (), broken)
    assert ran.returncode == 1
    (line,) = ran.stderr.splitlines()
    assert f"pumpsync {name} cannot load: " in line
    assert "cannot import name 'Opcode' from 'websockets.frames'" in line
    assert line.endswith(f"(websockets {websockets.version.version})")
