"""Provider dialects: pure protocol code, one module per provider."""

from __future__ import annotations

from pumpsync.errors import ConfigurationError
from pumpsync.providers.anaxer import Anaxer
from pumpsync.providers.base import Dialect
from pumpsync.providers.openpump import OpenPump

DIALECTS: dict[str, type[Dialect]] = {"openpump": OpenPump, "anaxer": Anaxer}


def dialect_class(provider: str) -> type[Dialect]:
    try:
        return DIALECTS[provider]
    except KeyError:
        raise ConfigurationError("provider", f"{provider!r} is not one of {', '.join(sorted(DIALECTS))}") from None


__all__ = ["DIALECTS", "Anaxer", "Dialect", "OpenPump", "dialect_class"]
