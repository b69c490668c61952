"""pumpsync: real-time Pump.fun launches and trades (OpenPump, Anaxer, PumpPortal, Solana RPC, Redis, replay)
for plain synchronous Python.

::

    import pumpsync

    with pumpsync.connect("anaxer", api_key=KEY, channels={"creations": {}}) as stream:
        for event in stream:
            print(event.kind, event.mint)
"""

from pumpsync import _early  # noqa: F401  first: `pumpsync daemon` catches SIGHUP before the slow imports
from pumpsync._gaps import GapReport
from pumpsync._hooks import ConnectInfo, DisconnectInfo
from pumpsync._sources import Source
from pumpsync._version import __version__
from pumpsync.client import Client, EventQueue, connect
from pumpsync.config import ClientConfig
from pumpsync.errors import (
    AllSourcesFailed,
    AuthenticationError,
    ClientClosed,
    ConfigurationError,
    ConnectionLost,
    PlanError,
    ProviderRefused,
    PumpsyncError,
    RequestTimeout,
    SourceFailed,
    SubscriptionRejected,
    ThreadFailed,
    UsageError,
)
from pumpsync.events import KINDS, Event, EventKind
from pumpsync.market import Market
from pumpsync.options import History, Limits, Network, ProviderOptions, Race, Retries, Timeouts
from pumpsync.providers.geyser import GeyserOptions
from pumpsync.providers.pumpportal import PumpPortalOptions
from pumpsync.providers.redis import RedisOptions
from pumpsync.providers.replay import ReplayOptions
from pumpsync.providers.solana import SolanaOptions
from pumpsync.views import Graduation, Launch, Migration, Price, TokenEnriched, Trade, TypedEvent, Unknown

__all__ = [
    "KINDS",
    "AllSourcesFailed",
    "AuthenticationError",
    "Client",
    "ClientClosed",
    "ClientConfig",
    "ConfigurationError",
    "ConnectInfo",
    "ConnectionLost",
    "DisconnectInfo",
    "Event",
    "EventKind",
    "EventQueue",
    "GapReport",
    "GeyserOptions",
    "Graduation",
    "History",
    "Launch",
    "Limits",
    "Market",
    "Migration",
    "Network",
    "PlanError",
    "Price",
    "ProviderOptions",
    "ProviderRefused",
    "PumpPortalOptions",
    "PumpsyncError",
    "Race",
    "RedisOptions",
    "ReplayOptions",
    "RequestTimeout",
    "Retries",
    "SolanaOptions",
    "Source",
    "SourceFailed",
    "SubscriptionRejected",
    "ThreadFailed",
    "Timeouts",
    "TokenEnriched",
    "Trade",
    "TypedEvent",
    "Unknown",
    "UsageError",
    "__version__",
    "connect",
]
