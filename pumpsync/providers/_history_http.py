"""What the history sources share over HTTP: reading an answer, bounded, before it is parsed.

A history server's answer is read at most ``limit`` bytes (streamed: a larger one is cut off and
refused, never held whole), then parsed; a body nested deeper than the parser can follow is refused
like any other that is not JSON. Each refusal is a ``HistoryError`` with a one-line reason.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from pumpsync.providers.spec import HistoryError

# A history answer larger than this is refused unparsed: a page of 1,000 items or one transaction is
# far smaller, and parsing multiplies the bytes by up to ~20 in Python objects.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
_READ = 64 * 1024


def read_json(response: requests.Response, what: str, limit: int = MAX_ANSWER_BYTES) -> Any:
    """The answer's JSON; ``HistoryError`` if it is over ``limit`` bytes, not JSON, or nested too deep.
    ``response`` must come from a request made with ``stream=True`` (the caller closes it)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HistoryError(f"{what}: the answer is {int(declared)} bytes, over the {limit}-byte bound")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(_READ):
            size += len(chunk)
            if size > limit:
                raise HistoryError(f"{what}: the answer is over the {limit}-byte bound")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise HistoryError(f"{what}: the answer was cut off ({type(exc).__name__})") from None
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # RecursionError: a body nested deeper than the parser goes
        raise HistoryError(f"{what}: the answer is not JSON") from None


__all__ = ["MAX_ANSWER_BYTES", "read_json"]
