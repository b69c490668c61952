"""Filter keys each provider understands, and the check that turns a typo into an error.

A provider passes filters through as given, and an unknown key is ignored on the wire (Anaxer
ignores what it does not know): ``{"minsol": 0.5}`` would stream every trade. So the keys are
checked here, against the lists each provider module declares (``ProviderSpec.filters``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pumpsync._text import did_you_mean
from pumpsync.errors import ConfigurationError


def check_filters(
    provider: str, channel: str, filters: Mapping[str, Any] | None, declared: Mapping[str, tuple[str, ...]]
) -> None:
    """Raise ``ConfigurationError("channels", ...)`` naming the first unknown key and the valid ones.

    ``declared`` maps each channel to its keys; a channel absent from it takes no filters.
    """
    if not filters:
        return
    valid = declared.get(channel, ())
    for key in filters:
        if key in valid:
            continue
        if not valid:
            raise ConfigurationError("channels", f"{provider} channel {channel!r} takes no filters (got {key!r})")
        hint = did_you_mean(key, valid)  # a case typo ("minsol") first: the likeliest one
        raise ConfigurationError(
            "channels",
            f"unknown filter {key!r} for {provider} channel {channel!r}{hint} (valid: {', '.join(valid)})",
        )
