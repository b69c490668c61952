"""API keys -> plans, per provider. Raw keys are only ever looked at, never kept."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

ALL_CHANNELS = frozenset({"trades", "creations", "graduations", "prices"})

INVALID_KEY = "sim-invalid"
FREE_KEY = "sim-free"
PRO_KEY = "sim-pro"
RATELIMITED_KEY = "sim-ratelimited"
# PumpPortal: keys whose linked wallet holds (or lacks) the 0.02 SOL that trade channels need.
FUNDED_KEY = "sim-funded"
UNFUNDED_KEY = "sim-unfunded"
DESIGNATED_KEYS = (INVALID_KEY, FREE_KEY, PRO_KEY, RATELIMITED_KEY, FUNDED_KEY, UNFUNDED_KEY)


@dataclass(frozen=True)
class OpenPumpPlan:
    name: str
    streaming: bool
    max_connections: int


@dataclass(frozen=True)
class AnaxerPlan:
    name: str
    channels: frozenset[str]
    max_connections: int
    rate_limited: bool = False


@dataclass(frozen=True)
class SolanaPlan:
    name: str
    subscribe: bool = True  # logsSubscribe allowed (history calls always are)
    rate_limited: bool = False


OPENPUMP_PLANS = {
    "free": OpenPumpPlan("free", streaming=False, max_connections=0),
    "pro": OpenPumpPlan("pro", streaming=True, max_connections=2),
    "enterprise": OpenPumpPlan("enterprise", streaming=True, max_connections=10),
}
ANAXER_PLANS = {
    "free": AnaxerPlan("free", ALL_CHANNELS - {"trades"}, max_connections=1),
    "pro": AnaxerPlan("pro", ALL_CHANNELS, max_connections=5),
    "enterprise": AnaxerPlan("enterprise", ALL_CHANNELS, max_connections=10),
}


@dataclass(frozen=True)
class PumpPortalPlan:
    name: str
    funded: bool  # trade channels stream (a key funded with at least 0.02 SOL)


PUMPPORTAL_PLANS = {
    "free": PumpPortalPlan("free", funded=False),
    "pro": PumpPortalPlan("pro", funded=True),
    "enterprise": PumpPortalPlan("enterprise", funded=True),
}
PUMPPORTAL_ANONYMOUS = PumpPortalPlan("anonymous", funded=False)  # no key: the free channels only


SOLANA_PLANS = {
    "free": SolanaPlan("free", subscribe=False),
    "pro": SolanaPlan("pro"),
    "enterprise": SolanaPlan("enterprise"),
}
PLAN_NAMES = tuple(OPENPUMP_PLANS)

# The designated test keys of the default key table (``keys=None``).
_DESIGNATED_OPENPUMP = {
    FREE_KEY: OPENPUMP_PLANS["free"],
    PRO_KEY: OPENPUMP_PLANS["pro"],
    RATELIMITED_KEY: OPENPUMP_PLANS["enterprise"],
}
_DESIGNATED_ANAXER = {
    FREE_KEY: ANAXER_PLANS["free"],
    # A "pro" key with a tight cap so tests can hit 4003 with two sockets.
    PRO_KEY: AnaxerPlan("pro", ALL_CHANNELS, max_connections=2),
    RATELIMITED_KEY: AnaxerPlan("pro", ALL_CHANNELS, max_connections=5, rate_limited=True),
}
# Any other key is funded; these are not (PumpPortal accepts every key: funding gates the trade channels).
_UNFUNDED_PUMPPORTAL = frozenset({UNFUNDED_KEY, FREE_KEY, INVALID_KEY})


def key_id(key: str) -> str:
    """Stable, non-reversible handle used to count one key's connections."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class KeyTable:
    """Resolves a presented key to a plan, or ``None`` when the key is refused."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        if keys is not None:
            unknown = sorted({plan for plan in keys.values() if plan not in OPENPUMP_PLANS})
            if unknown:
                raise ValueError(f"unknown plan name(s) {unknown}; expected one of {PLAN_NAMES}")
        # Stored by hash: the table itself must not hold raw keys either.
        self._explicit = None if keys is None else {key_id(k): p for k, p in keys.items()}

    def openpump(self, key: str | None) -> OpenPumpPlan | None:
        if not key:
            return None
        if self._explicit is not None:
            plan = self._explicit.get(key_id(key))
            return None if plan is None else OPENPUMP_PLANS[plan]
        if key == INVALID_KEY:
            return None
        return _DESIGNATED_OPENPUMP.get(key, OPENPUMP_PLANS["enterprise"])

    def anaxer(self, key: str | None) -> AnaxerPlan | None:
        if not key:
            return None
        if self._explicit is not None:
            plan = self._explicit.get(key_id(key))
            return None if plan is None else ANAXER_PLANS[plan]
        if key == INVALID_KEY:
            return None
        return _DESIGNATED_ANAXER.get(key, ANAXER_PLANS["pro"])

    def pumpportal(self, key: str | None) -> PumpPortalPlan:
        """PumpPortal lets every client in; the plan says whether the key's wallet is funded."""
        if not key:
            return PUMPPORTAL_ANONYMOUS
        if self._explicit is not None:
            plan = self._explicit.get(key_id(key))
            return PUMPPORTAL_PLANS["free"] if plan is None else PUMPPORTAL_PLANS[plan]
        return PUMPPORTAL_PLANS["free" if key in _UNFUNDED_PUMPPORTAL else "pro"]

    def solana(self, key: str | None) -> SolanaPlan | None:
        """A public node needs no key: without a key table any key, or none, is accepted."""
        if self._explicit is not None:
            plan = self._explicit.get(key_id(key)) if key else None
            return None if plan is None else SOLANA_PLANS[plan]
        if key == INVALID_KEY:
            return None
        if key == FREE_KEY:
            return SOLANA_PLANS["free"]
        if key == RATELIMITED_KEY:
            return SolanaPlan("pro", rate_limited=True)
        return SolanaPlan("public" if key is None else "pro")
