"""A transaction's log lines, scanned for what the event decoder needs: each ``Program data:`` line
before any ``Log truncated`` cut, with the program that wrote it.

The lines are joined once and searched with ``str.find``/``rfind`` (C speed): a trade's log has
40-60 lines and one or two events. Where joining could blur the lines (not only strings, or a line
holding the separator itself) the same scan runs over the list, line by line; both give the same.
"""

from __future__ import annotations

from typing import Any

DATA = "Program data: "
_CUT = "Log truncated"
_MARKS = (DATA, _CUT)
_NOT_A_PROGRAM = frozenset({"log: ", "data:", "retur"})  # "Program log:", "data:", "return:" (no id has a colon)

# A data line's payload (after the prefix) and the id of the program that wrote it (None: the top level).
Written = tuple[str, "str | None"]


def scan(logs: list[Any]) -> tuple[list[Written], bool]:
    """The event lines before any cut, each with its writer; and whether the log was cut."""
    try:
        text = "\n".join(logs)
    except TypeError:  # not a string somewhere
        return _scan_lines(logs)
    if "\n" in "".join(logs):  # a line holding the separator: the joined lines would not be the lines
        return _scan_lines(logs)
    end = 0 if text.startswith(_CUT) else text.find("\n" + _CUT)  # the separator before the cut line
    cut = end >= 0
    if not cut:
        end = len(text)
    out: list[Written] = []
    start = 0 if text.startswith(DATA) else _next_data(text, 0, end)
    while 0 <= start < end:
        stop = text.find("\n", start)
        if stop < 0:
            stop = len(text)
        out.append((text[start + 14 : stop], _writer_in(text, start)))
        start = _next_data(text, stop, end)
    return out, cut


def _next_data(text: str, start: int, end: int) -> int:
    """Where the next ``Program data:`` line starts, or -1."""
    at = text.find("\n" + DATA, start, end)
    return at + 1 if at >= 0 else -1


def _writer_in(text: str, at: int) -> str | None:
    """The program whose invocation is open at the line starting at ``text[at]`` (the innermost), or
    ``None`` at the top level. Walking back, each ``success``/``failed`` line closes one invocation whose
    ``invoke`` line is skipped; the first ``invoke`` not closed is the writer's. At the first closed
    ``invoke``, its depth ``[n]`` less the closes after it is the writer's depth: the rest of the walk is
    one search for that depth's last ``invoke`` line (_invoked_at); it goes on where that finds none."""
    closed = 0
    end = at - 1  # the separator ending the line before
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line_end, end = end, start - 1
        if not text.startswith("Program ", start, line_end) or text[start + 8 : start + 13] in _NOT_A_PROGRAM:
            continue
        if text[line_end - 1] == "]" and text.find(" invoke [", start, line_end) >= 0:
            if not closed:
                return text[start + 8 : text.find(" ", start + 8, line_end)]
            depth = text[text.rfind("[", start, line_end) + 1 : line_end - 1]
            if depth.isdecimal() and int(depth) > closed:  # not at the top level: the writer has a depth
                writer = _invoked_at(text, start, int(depth) - closed)
                if writer is not None:
                    return writer
            closed -= 1
        elif text.endswith(" success", start, line_end) or text.find(" failed", start, line_end) >= 0:
            closed += 1
    return None


def _invoked_at(text: str, before: int, depth: int) -> str | None:
    """The program of the last ``Program <id> invoke [depth]`` line ending before ``text[before]``, or
    ``None`` (there is none, or a log line merely ends like one: the caller walks on)."""
    suffix = f" invoke [{depth}]\n"
    at = text.rfind(suffix, 0, before)
    if at < 0:
        return None
    start = text.rfind("\n", 0, at) + 1
    if not text.startswith("Program ", start, at) or text[start + 8 : start + 13] in _NOT_A_PROGRAM:
        return None
    return text[start + 8 : at] if text.find(" ", start + 8, at + 1) == at else None


# ---------------------------------------------------------------- the same, line by line


def _scan_lines(logs: list[Any]) -> tuple[list[Written], bool]:
    out: list[Written] = []
    for i, line in enumerate(logs):
        if type(line) is str and line.startswith(_MARKS):
            if line[0] == "L":
                return out, True
            out.append((line[14:], _writer(logs, i)))
    return out, False


def _writer(logs: list[Any], index: int) -> str | None:
    """:func:`_writer_in` over the list."""
    closed = 0
    for j in range(index - 1, -1, -1):
        line = logs[j]
        if type(line) is not str or not line.startswith("Program ") or line[8:13] in _NOT_A_PROGRAM:
            continue
        if line[-1] == "]" and " invoke [" in line:
            if not closed:
                return line[8 : line.find(" ", 8)]
            depth = line[line.rfind("[") + 1 : -1]
            if depth.isdecimal() and int(depth) > closed:
                writer = _invoked(logs, j, int(depth) - closed)
                if writer is not None:
                    return writer
            closed -= 1
        elif line.endswith(" success") or " failed" in line:
            closed += 1
    return None


def _invoked(logs: list[Any], end: int, depth: int) -> str | None:
    """:func:`_invoked_at` over the list."""
    suffix = f" invoke [{depth}]"
    for j in range(end - 1, -1, -1):
        line = logs[j]
        if type(line) is str and line.endswith(suffix):
            space = line.find(" ", 8)
            if not line.startswith("Program ") or line[8:13] in _NOT_A_PROGRAM or space != len(line) - len(suffix):
                return None
            return line[8:space]
    return None


__all__ = ["DATA", "Written", "scan"]
