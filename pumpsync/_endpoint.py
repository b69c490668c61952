"""Is this the endpoint the user meant? Telling one provider's stream from another's.

Sans-I/O: the first frame (a greeting) and close codes in, a sentence out. Each provider's spec
says what its greeting looks like (``ProviderSpec.greeting``) and what its close codes mean
(its dialect's ``close_policies``); nothing here names a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pumpsync._secrets import safe_url
from pumpsync.providers import PROVIDERS


def foreign_greeting(provider: str, frame: Mapping[str, Any]) -> str | None:
    """The other provider whose greeting ``frame`` is; None if it is ours or nobody's we know."""
    own = PROVIDERS[provider].greeting
    if own is not None and own(frame):
        return None
    for name, spec in PROVIDERS.items():
        if name != provider and spec.greeting is not None and spec.greeting(frame):
            return name
    return None


def wrong_endpoint(provider: str, other: str, url: str) -> str:
    """One line: the stream at ``url`` is ``other``'s, not ``provider``'s, and what to do."""
    message = (
        f"{safe_url(url)} looks like the {other} endpoint (its first frame is {other}'s greeting), "
        f"not {provider}'s: check --url/url=, or use --provider {other}"
    )
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        message += " (the simulator serves each provider on a port of its own: see the URLs it prints)"
    return message


def close_code_elsewhere(provider: str, code: int | None) -> str:
    """What the same close code means to the other providers, where that differs: the hint that
    the URL may be another provider's (``""`` if no other provider reads it differently)."""
    if code is None:
        return ""
    own = PROVIDERS[provider].dialect.close_policies.get(code)
    others = [
        f"{name}'s {policy.meaning!r}"
        for name, spec in PROVIDERS.items()
        if name != provider
        and (policy := spec.dialect.close_policies.get(code)) is not None
        and (own is None or policy.meaning != own.meaning)
    ]
    if not others:
        return ""
    return f"; {code} is also {' and '.join(others)}: is --url that provider's endpoint?"


__all__ = ["close_code_elsewhere", "foreign_greeting", "wrong_endpoint"]
