"""Guards on decoded JSON that the parser does not give: nesting depth and lone surrogates.

Both walk iteratively (no recursion on hostile input)."""

from __future__ import annotations

import re
from typing import Any

# A lone surrogate (from a JSON "\ud800" escape) is no Unicode character: UTF-8 cannot encode it,
# so it would crash whatever writes the event out (stdout, SQLite, a webhook).
SURROGATE = re.compile("[\ud800-\udfff]")


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` deep (iterative: no recursion on hostile input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


__all__ = ["SURROGATE", "depth_exceeds", "has_lone_surrogate"]
