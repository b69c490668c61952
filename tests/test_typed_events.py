"""Types a checker can use (issue 28): ``Event.kind`` a Literal, per-kind views narrowed by mypy
--strict on ``kind`` and in a ``match``; the README's example is checked here."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pumpsync
from pumpsync.events import _COMMON_KEYS, _KIND_KEYS, KINDS
from pumpsync.views import VIEWS

ROOT = Path(__file__).resolve().parents[1]
MINT = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- typed-match-example -->\n```python\n(.*?)```", readme, re.S)
    assert match, "the README's typed match example is gone"
    return match.group(1)


def _event(kind: str, **fields: object) -> pumpsync.Event:
    base = pumpsync.Event(kind, "anaxer", MINT, "sig", 1, None, 1_700_000_000_000, 0, False, {})  # type: ignore[arg-type]
    return base._replace(**fields)


def test_each_view_has_exactly_its_kinds_fields() -> None:
    assert set(VIEWS) == set(KINDS)
    for kind, view in VIEWS.items():
        assert {f.name for f in dataclasses.fields(view)} == {*_COMMON_KEYS, *_KIND_KEYS[kind]}, kind
        typed = _event(kind).as_typed()
        assert type(typed) is view and typed.kind == kind and typed.mint == MINT


def test_the_readme_example_runs() -> None:
    scope: dict[str, object] = {}
    exec(compile(_readme_example(), "README.md", "exec"), scope)
    describe = scope["describe"]
    assert describe(_event("trade", side="buy", sol_amount=1.5)) == f"buy {MINT} for 1.500 SOL"  # type: ignore[operator]
    assert describe(_event("trade", side="sell")) == f"sell {MINT}"  # type: ignore[operator]
    assert describe(_event("new_token", symbol="PEPE")) == f"launch PEPE {MINT}"  # type: ignore[operator]
    assert describe(_event("migration", liquidity_sol=79.0)) == f"migration {MINT}: 79.0 SOL"  # type: ignore[operator]
    assert describe(_event("price")) == "price"  # type: ignore[operator]


@pytest.mark.timeout(300)
def test_mypy_strict_passes_the_readme_example_and_catches_what_it_should(tmp_path: Path) -> None:
    good = tmp_path / "readme_example.py"
    good.write_text(_readme_example())
    bad = tmp_path / "mistakes.py"
    bad.write_text(
        "import pumpsync\n\n\n"
        "def typo(event: pumpsync.Event) -> bool:\n"
        '    return event.kind == "trde"\n\n\n'
        "def wrong_field(event: pumpsync.Event) -> object:\n"
        "    typed = event.as_typed()\n"
        '    if typed.kind == "trade":\n'
        "        return typed.liquidity_sol\n"
        "    return None\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         str(good), str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=280,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [line for line in lines if "readme_example.py" in line], done.stdout
    assert any("mistakes.py:5" in line and "Non-overlapping equality check" in line for line in lines), done.stdout
    assert any("mistakes.py:11" in line and '"Trade" has no attribute "liquidity_sol"' in line for line in lines), (
        done.stdout
    )
