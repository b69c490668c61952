"""The library apart from the tooling (issue 24, item 6): ``import pumpsync`` loads what a client needs
and nothing of the command line, the daemon, the simulator, ``top``, the metrics server or the bench;
and a client works where the tooling's packages are not installed at all (``pip install pumpsync``).
Each case runs in a fresh interpreter, so what the test process imported does not count."""

from __future__ import annotations

import json
import subprocess
import sys

from pumpsync.events import KINDS
from pumpsync.simulator import Simulator

# Packages of the tools extra, the command line's and the metrics' (loaded when asked for, never by the
# import), and pumpsync's own tooling.
TOOLING = ("click", "websockets", "rich", "prometheus_client")
OWN_TOOLING = ("pumpsync.simulator", "pumpsync.cli", "pumpsync.daemon", "pumpsync.metrics", "pumpsync_bench")
BENCH = "pumpsync_bench"  # the benchmark's package, outside the library


def _tooling(modules: list[str]) -> list[str]:
    return [name for name in modules if name in OWN_TOOLING or name.startswith(tuple(f"{m}." for m in OWN_TOOLING))]


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_pumpsync_loads_no_tooling() -> None:
    ran = _run(
        "import json, sys\n"
        "import pumpsync\n"
        "from pumpsync import Client, connect, Event, Market, Trade, Launch, GapReport, Source, ClientConfig\n"
        "from pumpsync import *\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert ran.returncode == 0, ran.stderr
    loaded = json.loads(ran.stdout)
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & {*TOOLING, BENCH}, sorted(tops & {*TOOLING, BENCH})
    assert _tooling(loaded) == []


def test_the_check_sees_a_tooling_import() -> None:
    """The same listing, after an import the library must not do itself: the assertion above can fail."""
    ran = _run("import json, sys\nimport pumpsync, pumpsync.cli\nprint(json.dumps(sorted(sys.modules)))\n")
    assert ran.returncode == 0, ran.stderr
    assert {"click", "pumpsync.cli"} <= set(json.loads(ran.stdout))


def test_a_client_streams_without_the_tooling_installed() -> None:
    """The tooling's packages unimportable, as on a library user's install: a client connects to the
    simulator (run here, by the test) and receives events; nothing of the tooling was loaded."""
    with Simulator(providers=("openpump",), rate=50, seed=24) as sim:
        url = sim.url("openpump")
        code = (
            "import json, sys\n"
            f"for name in {TOOLING!r}: sys.modules[name] = None\n"
            "import pumpsync\n"
            f"with pumpsync.connect('openpump', url={url!r}, api_key='demo') as stream:\n"
            "    event = stream.get(timeout=30)\n"
            "print(json.dumps([event.kind, [m for m in sys.modules if m.startswith('pumpsync.')]]))\n"
        )
        ran = _run(code)
    assert ran.returncode == 0, ran.stderr
    kind, loaded = json.loads(ran.stdout)
    assert kind in KINDS, kind
    assert _tooling(loaded) == []


def test_the_simulator_without_the_tools_extra_names_it() -> None:
    """A library user's own tests that import the simulator on a library-only install."""
    ran = _run("import sys\nsys.modules['websockets'] = None\nimport pumpsync.simulator\n")
    assert ran.returncode == 1
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: pumpsync.simulator needs the tools extra"), last
    assert last.endswith("pip install 'pumpsync[tools]'"), last
