"""``Dialect.parse``'s orjson path (flat frames told by two scans, shallow ones by counting brackets)
gives the standard library's verdict on every frame, shallow, flat, deep or broken."""

from __future__ import annotations

from pathlib import Path

import pytest

import pumpsync.providers.base as base
from pumpsync.providers.openpump import OpenPump

ROOT = Path(__file__).resolve().parent
FRAMES: list[bytes] = [
    b"{}",
    b'{"type":"buy","mint":"M"}',
    b' {"type":"buy"}',  # the object does not start at byte 0: counted
    b'{"x":"[[[{{{"}',  # brackets inside a string
    b"[1,2]",
    b"[]",
    b'{"a":' + b"[" * 31 + b"]" * 31 + b"}",  # 32 deep: the limit
    b'{"a":' + b"[" * 32 + b"]" * 32 + b"}",  # 33: too deep
    b'{"a":' + b'{"b":' * 40 + b"1" + b"}" * 40 + b"}",
    b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"a":1,}',
    b'{"a":NaN}',
    b'{"a":"\\ud800"}',
    b"\xff{}",
    b'{"a":1}{"b":2}',
    b"",
]


def _captured() -> list[bytes]:
    lines = (ROOT / "pumpportal" / "captured_frames.txt").read_text(encoding="utf-8").splitlines()
    return [line.encode() for line in lines if line and not line.startswith("#")]


@pytest.mark.skipif(base._fast_loads is None, reason="orjson is not installed")
@pytest.mark.parametrize("payload", FRAMES + _captured())
def test_the_fast_path_agrees_with_the_standard_library(payload: bytes) -> None:
    dialect = OpenPump(0, [])
    assert repr(dialect.parse(payload)) == repr(dialect._parse_slowly(payload))


def test_without_orjson_one_line_says_what_is_slower_and_what_to_install(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(base, "_fast_loads", None)  # as where no orjson wheel installs
    monkeypatch.setattr(base, "_slow_json_told", False)
    dialect = OpenPump(0, [])
    with caplog.at_level("WARNING", logger="pumpsync"):
        for _ in range(3):
            assert dialect.parse(b'{"type":"buy"}') == {"type": "buy"}  # the pure-Python path still parses
    (record,) = [r for r in caplog.records if "orjson" in r.getMessage()]
    assert "slower" in record.getMessage() and "pip install orjson" in record.getMessage()
