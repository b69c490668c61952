"""The provider registry: one line per provider module (see docs/architecture.md).

Each module in this package exports ``SPEC = ProviderSpec(...)``; everything generic (the
config, the client, the CLI's ``--provider`` choices, ``pumpsync demo``, the daemon, the
simulator) reads the specs listed here and never tests a provider's name.
"""

from __future__ import annotations

from typing import Literal

from pumpsync.errors import ConfigurationError
from pumpsync.providers import anaxer, geyser, openpump, pumpportal, redis, replay, solana
from pumpsync.providers.anaxer import Anaxer
from pumpsync.providers.base import Dialect
from pumpsync.providers.openpump import OpenPump
from pumpsync.providers.spec import REGISTRY, ProviderSpec

# The registry: add one line for a new provider (and its name to ProviderName below). The dict is
# spec.REGISTRY, where a ClientConfig finds its provider's spec.
PROVIDERS: dict[str, ProviderSpec] = REGISTRY
PROVIDERS.update(
    (spec.name, spec)
    for spec in (
        openpump.SPEC,
        anaxer.SPEC,
        pumpportal.SPEC,
        redis.SPEC,
        replay.SPEC,
        solana.SPEC,
        geyser.SPEC,
    )
)
# Other names users know a provider by.
ALIASES = {"yellowstone": "geyser"}
# The names as a type, so that IDEs complete them and mypy refuses a typo (kept equal to PROVIDERS by a test).
ProviderName = Literal["openpump", "anaxer", "pumpportal", "redis", "replay", "solana", "geyser"]
DEFAULT_PROVIDER: ProviderName = "openpump"

# Kept for code written against the old table: provider name -> dialect class.
DIALECTS: dict[str, type[Dialect]] = {name: spec.dialect for name, spec in PROVIDERS.items()}


def provider_spec(provider: str) -> ProviderSpec:
    """The spec of ``provider``; a ConfigurationError naming the known ones otherwise."""
    try:
        return PROVIDERS[ALIASES.get(provider, provider)]
    except (KeyError, TypeError):
        raise ConfigurationError("provider", f"{provider!r} is not one of {', '.join(sorted(PROVIDERS))}") from None


def dialect_class(provider: str) -> type[Dialect]:
    return provider_spec(provider).dialect


def with_history() -> list[str]:
    """The providers whose gaps can be recovered (``since``, backfill)."""
    return [name for name, spec in PROVIDERS.items() if spec.history is not None]


__all__ = [
    "DEFAULT_PROVIDER",
    "DIALECTS",
    "PROVIDERS",
    "Anaxer",
    "Dialect",
    "OpenPump",
    "ProviderName",
    "ProviderSpec",
    "dialect_class",
    "provider_spec",
    "with_history",
]
