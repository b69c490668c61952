"""The log-line scan that finds each event line and the program that wrote it (``_solana_logs``).

On the real captured transactions (tests/solana/fixtures, SOURCES.md) and on hostile lines: the
joined-text search and the line-by-line walk agree, and both agree with a reference written here,
the plain walk back over every line with an explicit count of closed invocations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from pumpsync.providers._solana_logs import _scan_lines, scan

FIXTURES = Path(__file__).parent / "fixtures"
PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
AMM = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
REAL = ("pumpswap_buy_2026_09_24", "pumpswap_sell_buy_2025_12", "raw_create_tx_from_gettransaction")


def real_logs() -> list[list[str]]:
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                found.append(value) if name == "logMessages" else walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in REAL:
        walk(json.loads((FIXTURES / f"{name}.json").read_text()))
    assert len(found) == len(REAL)
    return found


def reference(logs: list[Any]) -> tuple[list[tuple[str, str | None]], bool]:
    """Every line walked: a stack of open invocations, pushed by ``invoke``, popped by ``success``/``failed``."""
    out: list[tuple[str, str | None]] = []
    stack: list[str] = []
    for line in logs:
        if type(line) is not str:
            continue
        if line.startswith("Log truncated"):
            return out, True
        if line.startswith("Program data: "):
            out.append((line[14:], stack[-1] if stack else None))
        elif line.startswith("Program ") and line[8:13] not in ("log: ", "data:", "retur"):
            if line.endswith("]") and " invoke [" in line:
                stack.append(line[8 : line.find(" ", 8)])
            elif (line.endswith(" success") or " failed" in line) and stack:
                stack.pop()
    return out, False


def test_the_real_transactions_events_and_writers() -> None:
    for logs in real_logs():
        found, cut = scan(logs)
        assert (found, cut) == _scan_lines(logs) == reference(logs)
        assert found and not cut
        assert {writer for _, writer in found} <= {PUMP, AMM}


def test_a_writer_past_closed_nested_invocations() -> None:
    """A program's event after its children (and theirs) have returned: still its own; an event of a
    wrapper that called the pump program is the wrapper's, not the pump program's."""
    logs = [
        f"Program {PUMP} invoke [1]",
        "Program Token invoke [2]",
        "Program Inner invoke [3]",
        "Program Inner success",
        "Program log: done",
        "Program Token success",
        "Program System invoke [2]",
        "Program System success",
        "Program data: AAAA",
        f"Program {PUMP} success",
        "Program Wrapper invoke [1]",
        f"Program {PUMP} invoke [2]",
        "Program data: BBBB",
        f"Program {PUMP} success",
        "Program data: CCCC",
        "Program Wrapper success",
    ]
    expected = [("AAAA", PUMP), ("BBBB", PUMP), ("CCCC", "Wrapper")]
    assert scan(logs) == _scan_lines(logs) == reference(logs) == (expected, False)


def test_lines_that_only_look_like_events_or_invocations() -> None:
    trade = "Program data: vdt/007mYe4="
    logs = [
        f"Program {PUMP} invoke [1]",
        "Program Other invoke [2]",
        f"Program log: x\n{trade}",  # one line holding a separator and an event's text: a log line
        f"Program log: Program {PUMP} invoke [1]",  # a log that ends like an invocation
        "Program Other success",
        trade,
        f"Program {PUMP} success",
        "Log truncated",
        trade,  # after the cut: lost, and said so
    ]
    assert scan(logs) == reference(logs) == ([("vdt/007mYe4=", PUMP)], True)
    logs[2] = 7  # not a string: skipped
    assert scan(logs) == reference(logs) == ([("vdt/007mYe4=", PUMP)], True)


def test_shuffled_and_cut_real_logs_agree_with_the_reference() -> None:
    """Well-formed logs rearranged (whole invocations dropped, repeated, cut), both paths and the reference."""
    rng = random.Random(7)
    corpus = real_logs()
    for _ in range(300):
        logs = list(rng.choice(corpus))
        if rng.random() < 0.5:
            logs = [*logs[: rng.randrange(len(logs) + 1)], "Log truncated"]
        extra = rng.choice(["Program log: hello", "Program data: QUJD", "", "Program ", "Program X consumed 1 of 2"])
        logs.insert(rng.randrange(len(logs) + 1), extra)
        assert scan(logs) == _scan_lines(logs) == reference(logs)
