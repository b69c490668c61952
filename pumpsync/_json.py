"""Strict JSON: what pumpsync writes (sinks, and anything else that promises JSON)."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    """``value`` with NaN and +-Infinity (which JSON does not have) replaced by null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def strict_json(data: Any) -> str:
    """Compact, strict JSON (UTF-8 text, no NaN/Infinity: a provider's become null)."""
    try:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # the rare non-finite float: walk the data only then
        return json.dumps(_finite(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str)


__all__ = ["strict_json"]
