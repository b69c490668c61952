"""The README's install steps (issue 17, item 8): a virtualenv under /opt/pumpsync, and the unit
as shipped (``ExecStart=/opt/pumpsync/bin/pumpsync``) verified by ``systemd-analyze verify``.

The steps run in a private mount namespace where a temporary directory stands in for ``/opt``,
so the host's ``/opt`` is never touched; the venv sees the test environment's packages
(a ``.pth`` file, which works inside a venv too) and pip installs offline (``--no-index --no-deps``), since CI may
have no network.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "systemd" / "pumpsync.service"
PURELIB = 'import sysconfig; print(sysconfig.get_paths()["purelib"])'


def _why_not() -> str | None:
    if shutil.which("systemd-analyze") is None:
        return "systemd-analyze is not installed (apt-get install systemd)"
    if shutil.which("unshare") is None:
        return "unshare is not installed (util-linux)"
    if os.geteuid() != 0:
        return "needs root for a private mount namespace (CI runs as root)"
    return None


def test_the_unit_points_at_the_virtualenv() -> None:
    assert "ExecStart=/opt/pumpsync/bin/pumpsync daemon --config /etc/pumpsync/pumpsync.toml" in UNIT.read_text()
    readme = (ROOT / "README.md").read_text()
    assert "sudo python3 -m venv /opt/pumpsync" in readme and "sudo /opt/pumpsync/bin/pip install ." in readme
    assert "    sudo pip install" not in readme


@pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")
def test_install_into_opt_pumpsync_then_verify_the_unit(tmp_path: Path) -> None:
    source = tmp_path / "clone"  # pip builds in the source tree: a copy keeps the worktree clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "pumpsync", source / "pumpsync", ignore=shutil.ignore_patterns("__pycache__"))
    opt = tmp_path / "opt"
    opt.mkdir()
    unit = tmp_path / "pumpsync.service"
    shutil.copy(UNIT, unit)
    wheels = tmp_path / "wheels"  # built with this environment's setuptools: the venv's own may be too old
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(source)], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pumpsync-*.whl")
    # The dependencies come from this test environment. Not `venv --system-site-packages`: run
    # inside a venv (as Debian and Ubuntu users must), that sees the base interpreter's packages,
    # not this environment's. A .pth line runs site.addsitedir, which also reads that directory's .pth files.
    here = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    borrow = "import site; " + "; ".join(f"site.addsitedir({path!r})" for path in here)
    script = f"""
set -e
mount --bind {opt} /opt
{sys.executable} -m venv /opt/pumpsync
echo {shlex.quote(borrow)} > "$(/opt/pumpsync/bin/python -c {shlex.quote(PURELIB)})/_test_env.pth"
/opt/pumpsync/bin/pip install -q --no-index --no-deps {wheel}
/opt/pumpsync/bin/pumpsync --version
systemd-analyze verify {unit}
"""
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pumpsync, version" in result.stdout
    assert "not executable" not in result.stderr
