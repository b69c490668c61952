"""The simulator's registry: one line per simulated provider (the same names as pumpsync.providers),
and the context each provider's server is built from."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pumpsync.simulator.anaxer import AnaxerServer
from pumpsync.simulator.openpump import OpenPumpServer
from pumpsync.simulator.plans import KeyTable
from pumpsync.simulator.pumpportal import BAN_SECONDS, BONK_SHARE, MISLABELLED_SHARE, PumpPortalServer
from pumpsync.simulator.server import ProviderServer
from pumpsync.simulator.solana import SolanaServer


@dataclass(frozen=True)
class ServerContext:
    """What a simulated provider's server is built from."""

    host: str
    port: int  # 0: a free port
    keys: KeyTable
    enrich_delay: float
    history_limit: int | None
    current_slot: Callable[[], int]
    # Provider-specific simulator options (``anaxer_form=...``), as given to ``Simulator(...)``.
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 1  # the simulator's seed, for servers with random draws of their own


@dataclass(frozen=True)
class SimulatedProvider:
    """One line of the simulator's registry."""

    server: Callable[[ServerContext], ProviderServer]
    path: str = "/v1/stream"  # the stream's path on the server
    rest: bool = False  # also serves the provider's REST history on the same port (``rest_url``)
    options: tuple[str, ...] = ()  # the Simulator(...) keyword options this server reads
    needs: str | None = None  # a module of an optional extra the server runs on (grpc: pumpsync[geyser])

    @property
    def available(self) -> bool:
        """The server can run here (its extra is installed)."""
        return self.needs is None or importlib.util.find_spec(self.needs) is not None


def _openpump(ctx: ServerContext) -> ProviderServer:
    return OpenPumpServer(ctx.host, ctx.port, ctx.keys, ctx.enrich_delay, ctx.history_limit)


def _pumpportal(ctx: ServerContext) -> ProviderServer:
    return PumpPortalServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.seed,
        ctx.options.get("pumpportal_ban_seconds", BAN_SECONDS),
        ctx.options.get("pumpportal_bonk_share", BONK_SHARE),
        ctx.options.get("pumpportal_mislabelled_share", MISLABELLED_SHARE),
        ctx.history_limit,
    )


def _solana(ctx: ServerContext) -> ProviderServer:
    return SolanaServer(ctx.host, ctx.port, ctx.keys, ctx.current_slot, ctx.history_limit)


def _geyser(ctx: ServerContext) -> ProviderServer:
    from pumpsync.simulator.geyser import GeyserServer  # grpcio: the geyser extra

    return GeyserServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.current_slot,
        ctx.history_limit,
        ctx.options.get("geyser_ping_interval", 10.0),
        ctx.options.get("geyser_replay_slots", 150),
    )


def _anaxer(ctx: ServerContext) -> ProviderServer:
    return AnaxerServer(
        ctx.host,
        ctx.port,
        ctx.keys,
        ctx.options.get("anaxer_form", "auto"),
        ctx.options.get("anaxer_ping_interval", 30.0),
        ctx.options.get("anaxer_pong_timeout", 10.0),
        ctx.current_slot,
        ctx.history_limit,
    )


# The simulator's registry: one line per simulated provider (the same names as pumpsync.providers).
SERVERS: dict[str, SimulatedProvider] = {
    "openpump": SimulatedProvider(_openpump),
    "anaxer": SimulatedProvider(
        _anaxer, rest=True, options=("anaxer_form", "anaxer_ping_interval", "anaxer_pong_timeout")
    ),
    "pumpportal": SimulatedProvider(
        _pumpportal,
        path="/api/data",
        options=("pumpportal_ban_seconds", "pumpportal_bonk_share", "pumpportal_mislabelled_share"),
    ),
    "solana": SimulatedProvider(_solana, path="/", rest=True),  # rest_url: HTTP JSON-RPC (POST)
    # gRPC on a port of its own (the server's stream_url); rest_url: the node's HTTP JSON-RPC history
    "geyser": SimulatedProvider(
        _geyser, path="", rest=True, options=("geyser_ping_interval", "geyser_replay_slots"), needs="grpc"
    ),
}
PROVIDERS = tuple(SERVERS)
# "both": the two providers the simulator first served (the default of ``pumpsync simulate``).
_BOTH = ("openpump", "anaxer")


def chosen_providers(value: str | Iterable[str]) -> tuple[str, ...]:
    """``"both"``, ``"all"``, one name or several, as registry names in the registry's order."""
    if isinstance(value, str):
        names = _BOTH if value == "both" else PROVIDERS if value == "all" else (value,)
    else:
        names = tuple(value)
    unknown = [p for p in names if p not in PROVIDERS]
    if not names or unknown:
        raise ValueError(f"providers must be a non-empty subset of {PROVIDERS}, got {value!r}")
    return tuple(p for p in PROVIDERS if p in names)
