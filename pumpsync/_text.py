"""Untrusted text (a provider's strings) made fit for a terminal or a log line, and warnings
that a hostile peer cannot multiply."""

from __future__ import annotations

import difflib
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable

# Provider strings are untrusted: a token named "\x1b]0;pwned\x07" must not drive the terminal.
_CONTROLS = {c: "?" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
# Invisible characters that change what the line appears to say: bidi overrides and isolates
# (U+202E, U+2066..), zero-width ones, line/paragraph separators (U+2028), lone surrogates.
_INVISIBLE = frozenset(("Cf", "Zl", "Zp", "Cs", "Co", "Cn"))
OTHER = "other"


def terminal_safe(text: str) -> str:
    """``text`` fit for a terminal: control characters as ``?``, invisible format characters
    (bidi overrides, zero-width, U+2028...) escaped as ``\\uXXXX``, so that they show."""
    text = text.translate(_CONTROLS)
    if text.isascii():
        return text
    return "".join(
        f"\\u{ord(ch):04x}" if ord(ch) > 0x7F and unicodedata.category(ch) in _INVISIBLE else ch for ch in text
    )


def log_safe(text: str, limit: int = 200) -> str:
    """A provider's text for one log line: escaped as for a terminal and cut to ``limit`` characters."""
    text = terminal_safe(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_label(counts: Counter[str], label: str, limit: int = 64) -> str:
    """``label``, or ``"other"`` once ``counts`` holds ``limit - 1`` distinct labels (``limit`` with
    ``"other"``): a peer that invents a new code per frame must not grow memory or the metrics."""
    return label if label in counts or len(counts) < limit - 1 else OTHER


class WarningGate:
    """Lets a warning about a key through once, then at most once per ``interval`` seconds with
    the number held back meanwhile; remembers at most ``limit`` keys (the rest share one)."""

    def __init__(self, interval: float = 60.0, limit: int = 64) -> None:
        self.interval = interval
        self.limit = limit
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def allow(self, key: str) -> int | None:
        """None: hold this one back; else the number held back since the last one let through."""
        now = time.monotonic()
        with self._lock:
            if key not in self._last and len(self._last) >= self.limit:
                key = OTHER
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] += 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the likeliest intended choice (a case typo first), else ``""``."""
    valid = list(choices)
    text = str(word)
    close = [v for v in valid if v.lower() == text.lower()] or difflib.get_close_matches(text, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


__all__ = ["OTHER", "WarningGate", "bounded_label", "did_you_mean", "log_safe", "terminal_safe"]
